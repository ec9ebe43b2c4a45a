/**
 * HashiCorp Vault's KV v2 HTTP API, the part a key reference uses (`vault:mount/path#field`),
 * served under `/vault` (so VAULT_ADDR is `<sandbox url>/vault`):
 * `GET /v1/{mount}/data/{path}[?version=N]` and `POST /v1/{mount}/data/{path}` with
 * `{ data: {...} }`, authenticated by `X-Vault-Token`; errors as Vault sends them
 * (`{ errors: [...] }`; 403 "permission denied", 404 with an empty list). Admin view:
 * `GET /__sandbox/vault` (paths, versions and fingerprints only).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ServerContext } from '../server-context';

const writeBody = z.object({ data: z.record(z.string(), z.unknown()), options: z.object({ cas: z.number().int().optional() }).optional() });

export async function vaultApi(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const vault = ctx.admin.vault;
  const denied = (req: FastifyRequest, reply: FastifyReply): boolean => {
    if (req.headers['x-vault-token'] === vault.token) return false;
    void reply.code(403).send({ errors: ['permission denied'] });
    return true;
  };
  const target = (req: FastifyRequest) => {
    const p = req.params as { mount: string; '*': string };
    return { mount: p.mount, path: p['*'] };
  };

  app.get('/vault/v1/:mount/data/*', async (req, reply) => {
    if (denied(req, reply)) return reply;
    const { mount, path } = target(req);
    const q = req.query as { version?: string };
    const version = q.version !== undefined ? Number(q.version) : undefined;
    const v = vault.read(mount, path, Number.isInteger(version) && version! > 0 ? version : undefined);
    if (!v) return reply.code(404).send({ errors: [] });
    return {
      request_id: crypto.randomUUID(),
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      data: { data: v.data, metadata: { created_time: v.createdTime, custom_metadata: null, deletion_time: '', destroyed: false, version: v.version } },
    };
  });

  app.post('/vault/v1/:mount/data/*', async (req, reply) => {
    if (denied(req, reply)) return reply;
    const body = writeBody.safeParse(req.body);
    if (!body.success) return reply.code(400).send({ errors: ['no data provided'] });
    const { mount, path } = target(req);
    const v = vault.write(mount, path, body.data.data);
    return { request_id: crypto.randomUUID(), data: { created_time: v.createdTime, custom_metadata: null, deletion_time: '', destroyed: false, version: v.version } };
  });

  app.get('/__sandbox/vault', async () => ({ reads: vault.reads, writes: vault.writes, secrets: vault.overview() }));
}
