/**
 * Clerk's Platform API (private beta): key rotation and the instance config's `session` key.
 *
 * Rotation:
 * `POST /v1/platform/applications/{app}/instances/{env}/rotate_secret_keys` with
 * `{ delay_old_secrets_expiration_hours }`, authenticated by the Platform API bearer token (not a
 * secret key). It adds a new secret key to the instance and makes every other active key expire
 * after the delay (0: at once). `{env}` is the instance id or its environment (`development`).
 * Request and answer as Clerk's Platform API spec (github.com/clerk/openapi-specs, platform/beta.yml,
 * `PlatformRotateInstanceSecretKeys`): `{ application_id, name, instances: [{ instance_id,
 * environment_type, secret_key }] }`; the body allows only `delay_old_secrets_expiration_hours` and `reason`.
 *
 * Instance config (instance-config.ts has what was confirmed and what is the sandbox's choice):
 * `GET …/instances/{env}/config[?keys=session]` → `{config_version, session: {lifetime,
 * inactivity_timeout}}`; `PATCH …/config[?dry_run=true][&destructive=true]` with an optional
 * `If-Match: <config_version>` → `{config_version, dry_run, before, after}`.
 *
 * Admin views: `GET /__sandbox/platform` (rotations, key ids only), `GET /__sandbox/instance/config`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { clerkErrors, sendClerk } from '../clerk-reply';
import { ConfigRequestError } from '../instance-config';
import type { ServerContext } from '../server-context';

const rotateBody = z
  .strictObject({ delay_old_secrets_expiration_hours: z.number().int().min(0).max(720).optional(), reason: z.string().max(500).optional() })
  .optional();

export async function clerkPlatformApi(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const { admin } = ctx;
  const platform = admin.platform;

  app.post<{ Params: { app: string; env: string } }>('/v1/platform/applications/:app/instances/:env/rotate_secret_keys', { config: { routeKey: 'POST /v1/platform/applications/{app}/instances/{env}/rotate_secret_keys' } }, async (req, reply) => {
    if (req.headers.authorization !== `Bearer ${platform.token}`) {
      return sendClerk(reply, 401, clerkErrors('authentication_invalid', 'Unauthorized request', 'The Platform API token is missing or invalid.'));
    }
    const { app: appId, env } = req.params;
    if (appId !== platform.applicationId || (env !== admin.instanceId && env !== 'development')) {
      return sendClerk(reply, 404, clerkErrors('resource_not_found', 'not found', `No instance ${env} in application ${appId}`));
    }
    const body = rotateBody.safeParse(req.body);
    if (!body.success) return sendClerk(reply, 422, clerkErrors('form_param_format_invalid', 'is invalid', 'delay_old_secrets_expiration_hours must be a whole number of hours (0-720)', { param_name: 'delay_old_secrets_expiration_hours' }));
    const delayHours = body.data?.delay_old_secrets_expiration_hours ?? 0;
    const expiresAt = Date.now() + delayHours * 3_600_000;
    const old = admin.keys.list().filter((k) => k.deletedAt === null);
    const created = admin.keys.add(undefined, 'platform rotation');
    for (const k of old) admin.keys.expireAt(k.id, expiresAt);
    const expiring = old.map((k) => ({ id: k.id, expiresAt: new Date(expiresAt).toISOString() }));
    platform.rotations.push({ time: new Date().toISOString(), instance: admin.instanceId, newKeyId: created.id, expiring, delayHours });
    return sendClerk(reply, 200, {
      application_id: platform.applicationId,
      name: 'sandbox application',
      instances: [{ instance_id: admin.instanceId, environment_type: 'development', secret_key: created.secretKey }],
    });
  });

  /** The bearer token and the application/instance in the path, as the rotation route checks them; a reply when refused. */
  const refuse = (req: FastifyRequest<{ Params: { app: string; env: string } }>, reply: FastifyReply): FastifyReply | null => {
    if (req.headers.authorization !== `Bearer ${platform.token}`) {
      return sendClerk(reply, 401, clerkErrors('authentication_invalid', 'Unauthorized request', 'The Platform API token is missing or invalid.'));
    }
    const { app: appId, env } = req.params;
    if (appId !== platform.applicationId || (env !== admin.instanceId && env !== 'development')) {
      return sendClerk(reply, 404, clerkErrors('resource_not_found', 'not found', `No instance ${env} in application ${appId}`));
    }
    return null;
  };
  const configError = (reply: FastifyReply, err: unknown): FastifyReply => {
    if (!(err instanceof ConfigRequestError)) throw err;
    return sendClerk(reply, err.status, clerkErrors(err.code, err.shortMessage, err.longMessage, err.meta));
  };
  /** `?keys=a&keys=b` (repeated, as the spec's `explode: true` form). */
  const keysParam = (q: unknown): string[] => {
    const keys = (q as { keys?: string | string[] }).keys;
    return keys === undefined ? [] : Array.isArray(keys) ? keys : [keys];
  };
  /** A boolean query parameter: absent or `false` is false, `true` true, anything else a 400. */
  const flag = (q: unknown, name: string): boolean => {
    const v = (q as Record<string, unknown>)[name];
    if (v === undefined || v === 'false') return false;
    if (v === 'true') return true;
    throw new ConfigRequestError(400, 'form_param_format_invalid', 'is invalid', `${name} must be true or false`, { param_name: name });
  };

  app.get<{ Params: { app: string; env: string } }>('/v1/platform/applications/:app/instances/:env/config', { config: { routeKey: 'GET /v1/platform/applications/{app}/instances/{env}/config' } }, async (req, reply) => {
    const refused = refuse(req, reply);
    if (refused) return refused;
    try {
      return sendClerk(reply, 200, admin.instance.config.read(keysParam(req.query)));
    } catch (err) {
      return configError(reply, err);
    }
  });

  app.patch<{ Params: { app: string; env: string } }>('/v1/platform/applications/:app/instances/:env/config', { config: { routeKey: 'PATCH /v1/platform/applications/{app}/instances/{env}/config' } }, async (req, reply) => {
    const refused = refuse(req, reply);
    if (refused) return refused;
    const ifMatch = req.headers['if-match'];
    try {
      const answer = admin.instance.config.patch(req.body, {
        dryRun: flag(req.query, 'dry_run'),
        destructive: flag(req.query, 'destructive'),
        ...(typeof ifMatch === 'string' ? { ifMatch } : {}),
      });
      return sendClerk(reply, 200, answer);
    } catch (err) {
      return configError(reply, err);
    }
  });

  app.get('/__sandbox/platform', async () => ({ applicationId: platform.applicationId, instanceId: admin.instanceId, rotations: platform.rotations }));
}
