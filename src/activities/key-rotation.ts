/**
 * The key rotation's activities (the `key_compromise` playbook, src/workflows/incident-rotation.ts).
 * Secrets are resolved from references inside each activity and never leave it: what returns to
 * the workflow is references, fingerprints, instance ids, counts and HTTP statuses.
 *
 * - `keyRotationBegin`: the worker's current key (fingerprint, instance), the ways available;
 * - `platformRotateKey`: Clerk's Platform API makes the new key; it is stored via a reference;
 * - `verifyNewKey`: the new key answers 200 for the same instance as the old one;
 * - `pushSecretKey`: the new key into the deployment (the deploy adapter, `CLERK_SECRET_KEY`);
 * - `appHealth`: the app's health route, and the deployment it reports;
 * - `promoteWorkerKey`: the worker's own reference now gives the new key (written, or followed);
 * - `proveKeyDead`: a request with the old key gets 401 `clerk_key_invalid`, or it does not;
 * - `exposureAudit`: what the Backend API lists as created in the exposure window.
 */
import { unlink } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { createClerkClient } from '@clerk/backend';
import { classifyClerkError, ClerkError, ClerkRateLimited, withTimeout } from './clerk-errors';
import type { ClerkGateway } from './clerk';
import type { DeployAdapter } from './deploy';
import { toDeployFailure } from './deploy';
import { assertClerkSecretKey, authorizeKeyRef, KeyRefRefused } from '../keys/allowlist';
import { fingerprint, KeyRefError } from '../keys/resolve';
import type { KeyRotationDeps } from '../keys/rotation';
import { parseKeyRef, type KeyRef } from '../keys/ref';
import { redactSecrets } from '../secret-patterns';
import { z } from 'zod';

/** Clerk's `PlatformRotateSecretKeysResponse` (platform/beta.yml), the part we read. */
const platformRotateAnswer = z.object({
  instances: z.array(z.object({ instance_id: z.string(), environment_type: z.string(), secret_key: z.string().min(1) })).min(1),
});

export interface RotationStart {
  workerRef: string;
  fingerprint: string;
  instanceId: string;
  /** The Platform API is configured: the runbook makes the new key itself. */
  platform: { delayHours: number } | null;
}

export type KeyProof =
  | { state: 'dead'; status: number; code: string }
  | { state: 'alive'; status: number }
  | { state: 'unknown'; reason: string };

export interface ExposureAudit {
  from: string;
  /** Set when no `exposedAt` was given: the window is the configured lookback (KEY_EXPOSURE_LOOKBACK), not the exposure. */
  lookbackMs: number | null;
  to: string;
  usersCreated: number;
  usersCreatedIds: string[];
  usersActive: number;
  sessionsCreated: number;
  /** Users whose sessions were listed (those active in the window, up to a bound). */
  usersScanned: number;
  /** True when every user active in the window had their sessions listed. */
  complete: boolean;
}

const fail = (type: string, message: string, nonRetryable = true) => ApplicationFailure.create({ type, message, nonRetryable });

/** A reference that failed: typed, naming the reference and the rule; another error's text (which may quote what was read) is not kept. */
function refFailure(err: unknown, ref = 'the key reference'): ApplicationFailure {
  if (err instanceof KeyRefRefused) return fail('KeyRefRefused', err.message);
  if (err instanceof KeyRefError) return fail('KeyRefUnresolved', err.message, !err.retryable);
  return fail('KeyRefUnresolved', `${ref}: could not be read (${errorCode(err)})`);
}

/** An error's code or class, never its message (an HTTP client's "invalid header value" quotes the value). */
function errorCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown }; name?: unknown };
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
  return code ?? (typeof e?.name === 'string' ? e.name : 'error');
}

/** `text` with a secret in play, and anything shaped like one, taken out. */
const scrub = (text: string, secret: string) => redactSecrets(secret ? text.split(secret).join('[redacted]') : text);

/** Same store: the same file (or its `.retired` copy), or the same Vault secret and field at any version. */
function sameStore(a: KeyRef, b: KeyRef): boolean {
  if (a.kind === 'file' && b.kind === 'file') return a.path === b.path || a.path === `${b.path}.retired`;
  if (a.kind === 'vault' && b.kind === 'vault') return a.mount === b.mount && a.path === b.path && a.field === b.field;
  return a.kind === 'env' && b.kind === 'env' && a.name === b.name;
}

const AUDIT_USER_BOUND = 500;
const USERS_SHOWN = 20;

/** KEY_EXPOSURE_LOOKBACK's default (src/config.ts). */
const DEFAULT_EXPOSURE_LOOKBACK_MS = 30 * 86_400_000;

export function createKeyRotationActivities(
  getDeps: () => KeyRotationDeps | undefined,
  deps: { clerk: () => ClerkGateway | undefined; deploy: () => DeployAdapter | undefined; appHealthUrl?: string; exposureLookbackMs?: number },
) {
  const need = (what: string): KeyRotationDeps => {
    const d = getDeps();
    if (!d) throw fail('KeyRotationNotConfigured', `${what}: this worker has no key reference (CLERK_SECRET_KEY_REF or CLERK_SECRET_KEY); see docs/key-rotation.md`);
    return d;
  };
  // Old keys this process has seen, by fingerprint: proof of death needs the old value.
  const held = new Map<string, string>();

  /** The worker's own references (its key, the Platform API's store, and their retired copies): its configuration, trusted. */
  const ownRef = (d: KeyRotationDeps, ref: string): boolean => {
    const r = parseKeyRef(ref);
    return [d.workerKey.ref, d.workerKey.activeRef, d.platform?.storeRef].some((own) => own !== undefined && sameStore(r, parseKeyRef(own)));
  };

  /**
   * The key a reference gives, for a reference an incident sent: allowed by the worker's
   * configuration (KEY_REF_ALLOWED_*) unless it is the worker's own, and shaped like a Clerk
   * secret key, before anything is sent anywhere.
   */
  const resolve = async (d: KeyRotationDeps, ref: string, fresh = true) => {
    try {
      const target = ownRef(d, ref) ? ref : await authorizeKeyRef(ref, d.refPolicy);
      return assertClerkSecretKey(ref, await d.resolver.resolve(target, { fresh }));
    } catch (err) {
      throw refFailure(err, ref);
    }
  };

  /** GET /v1/instance with one given key: its instance id, or the Clerk error (its message scrubbed of the key). */
  const instanceWith = async (d: KeyRotationDeps, secretKey: string): Promise<{ id: string } | { error: ClerkError | Error }> => {
    const client = createClerkClient({ secretKey, ...(d.apiUrl ? { apiUrl: d.apiUrl } : {}) });
    try {
      const inst = await withTimeout(client.instance.get(), 10_000);
      return { id: inst.id };
    } catch (err) {
      const e = classifyClerkError(err, 'instance.get');
      if (e instanceof ClerkError) {
        e.message = scrub(e.message, secretKey);
        return { error: e };
      }
      return { error: new Error(`the request to Clerk could not be sent (${errorCode(e)})`) };
    }
  };

  /**
   * The key an earlier attempt of the rotation stored at `storeRef`, by fingerprint: one that is not
   * the worker's current key and that the Backend API accepts. Undefined otherwise (nothing stored,
   * the worker's own key, a dead key): the rotation then runs.
   */
  const earlierRotation = async (d: KeyRotationDeps, storeRef: string): Promise<string | undefined> => {
    const stored = await resolve(d, storeRef).catch(() => undefined);
    const current = await d.workerKey.refresh().catch(() => undefined);
    if (!stored || !current || fingerprint(stored) === fingerprint(current)) return undefined;
    const inst = await instanceWith(d, stored);
    return 'error' in inst ? undefined : fingerprint(stored);
  };

  return {
    /** Null when this worker has no key reference: the rotation is then done by hand. */
    async keyRotationBegin(): Promise<RotationStart | null> {
      const d = getDeps();
      if (!d) return null;
      const secret = await d.workerKey
        .refresh()
        .then((s) => assertClerkSecretKey(d.workerKey.activeRef, s))
        .catch((err: unknown) => {
          throw refFailure(err, d.workerKey.activeRef);
        });
      const fp = fingerprint(secret);
      held.set(fp, secret);
      const inst = await instanceWith(d, secret);
      if ('error' in inst) {
        // A 429, 5xx or network error says nothing about the key: retried as ClerkUnavailable (the workflow never retries ClerkKeyInvalid).
        const e = inst.error;
        if (e instanceof ClerkError && e.retryable) {
          throw ApplicationFailure.create({ type: 'ClerkUnavailable', message: `could not check the worker's current key (${fp}): ${e.message}`, ...(e instanceof ClerkRateLimited ? { nextRetryDelay: e.retryAfterMs } : {}) });
        }
        throw fail('ClerkKeyInvalid', `the worker's current key (${fp}, ${d.workerKey.activeRef}) does not work: ${e.message}`);
      }
      return { workerRef: d.workerKey.activeRef, fingerprint: fp, instanceId: inst.id, platform: d.platform ? { delayHours: d.platform.delayHours } : null };
    },

    async platformRotateKey(): Promise<{ ref: string; fingerprint: string; oldKeysExpireAt: string | null }> {
      const d = need('platformRotateKey');
      const p = d.platform;
      if (!p) throw fail('KeyRotationNotConfigured', 'platformRotateKey: no Platform API token is configured (CLERK_PLATFORM_API_TOKEN)');
      // A retry after a worker died past the rotation and the store: the key it stored is the new one; no second rotation.
      if (Context.current().info.attempt > 1) {
        const earlier = await earlierRotation(d, p.storeRef);
        if (earlier) return { ref: p.storeRef, fingerprint: earlier, oldKeysExpireAt: new Date(Date.now() + p.delayHours * 3_600_000).toISOString() };
      }
      const url = `${(p.url ?? 'https://api.clerk.com').replace(/\/+$/, '')}/v1/platform/applications/${encodeURIComponent(p.applicationId)}/instances/${encodeURIComponent(p.instance)}/rotate_secret_keys`;
      const res = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${p.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ delay_old_secrets_expiration_hours: p.delayHours, reason: 'key_compromise incident' }),
        signal: AbortSignal.timeout(15_000),
      }).catch((err: unknown) => {
        throw fail('PlatformApiUnavailable', `Platform API did not answer (${errorCode(err)})`, false);
      });
      const body: unknown = await res.json().catch(() => ({}));
      if (!res.ok) {
        const e = (body as { errors?: { code?: string; long_message?: string }[] }).errors?.[0];
        throw fail(res.status >= 500 || res.status === 429 ? 'PlatformApiUnavailable' : 'PlatformApiRejected', `Platform API rotate_secret_keys answered ${res.status}${e?.code ? ` ${e.code}` : ''}: ${e?.long_message ?? 'no detail'}`, !(res.status >= 500 || res.status === 429));
      }
      // The spec's PlatformRotateSecretKeysResponse: one entry per instance rotated (here one).
      const parsed = platformRotateAnswer.safeParse(body);
      const rotated = parsed.success ? (parsed.data.instances.find((i) => i.instance_id === p.instance || i.environment_type === p.instance) ?? parsed.data.instances[0]) : undefined;
      const secret = rotated?.secret_key;
      if (!secret) throw fail('PlatformApiRejected', 'Platform API rotate_secret_keys answered 200 without an instance secret key (instances[].secret_key)');
      try {
        assertClerkSecretKey('instances[].secret_key', secret);
      } catch (err) {
        throw refFailure(err);
      }
      try {
        await d.resolver.store(p.storeRef, secret);
      } catch (err) {
        // The key exists at Clerk but is stored nowhere: say so; an operator deletes it in the Dashboard.
        throw fail('KeyRefUnresolved', `the new key ${fingerprint(secret)} was created but could not be stored at ${p.storeRef}: ${err instanceof KeyRefError ? err.message : errorCode(err)}`);
      }
      // The answer does not say when the old keys expire: the delay asked for, from now.
      return { ref: p.storeRef, fingerprint: fingerprint(secret), oldKeysExpireAt: new Date(Date.now() + p.delayHours * 3_600_000).toISOString() };
    },

    async verifyNewKey(input: { ref: string; instanceId: string; oldFingerprint: string }): Promise<{ fingerprint: string; instanceId: string }> {
      const d = need('verifyNewKey');
      const secret = await resolve(d, input.ref);
      const fp = fingerprint(secret);
      if (fp === input.oldFingerprint) throw fail('NewKeyInvalid', `${input.ref} holds the old key (${fp}), not a new one`);
      const inst = await instanceWith(d, secret);
      if ('error' in inst) {
        const e = inst.error;
        const retryable = e instanceof ClerkError && e.retryable;
        throw fail(retryable ? 'ClerkUnavailable' : 'NewKeyInvalid', `the new key ${fp} (${input.ref}) was refused by the Backend API: ${e instanceof ClerkError ? `${e.status ?? 'no status'} ${e.code ?? ''} ` : ''}${e.message}`, !retryable);
      }
      if (inst.id !== input.instanceId) throw fail('NewKeyWrongInstance', `the new key ${fp} belongs to instance ${inst.id}, not ${input.instanceId} (the old key's)`);
      return { fingerprint: fp, instanceId: inst.id };
    },

    async pushSecretKey(input: { ref: string; fingerprint: string }): Promise<{ adapter: string; key: string; action: string; needsRedeploy: boolean }> {
      const d = need('pushSecretKey');
      const adapter = deps.deploy();
      if (!adapter) throw fail('DeployRequestRejected', 'pushSecretKey: no deploy adapter is configured (DEPLOY_ADAPTER, docs/bypass.md)');
      const secret = await resolve(d, input.ref);
      if (fingerprint(secret) !== input.fingerprint) throw fail('KeyChanged', `${input.ref} changed since it was verified (now ${fingerprint(secret)}, verified ${input.fingerprint}); provide the key again`);
      const key = d.appKeyName ?? 'CLERK_SECRET_KEY';
      try {
        // Marked with the key's fingerprint: a retry after a crash finds its own push and does not push twice.
        const change = await adapter.setValue(key, secret, { sensitive: true, marker: `clerk-incident-runbook key ${input.fingerprint}` });
        return { adapter: change.adapter, key: change.key, action: change.action, needsRedeploy: adapter.needsRedeploy };
      } catch (err) {
        throw toDeployFailure(err);
      }
    },

    async appHealth(): Promise<{ status: number | null; ok: boolean; deploymentId: string | null; detail: string }> {
      if (!deps.appHealthUrl) return { status: null, ok: false, deploymentId: null, detail: 'no APP_HEALTH_URL configured' };
      try {
        const res = await fetch(deps.appHealthUrl, { signal: AbortSignal.timeout(10_000) });
        const body = (await res.json().catch(() => ({}))) as { status?: string; bypass?: { deploymentId?: string | null }; clerk?: { status?: number | null } };
        return {
          status: res.status,
          ok: res.ok,
          deploymentId: body.bypass?.deploymentId ?? null,
          detail: `health ${res.status}${body.clerk?.status ? `, Clerk answered the app ${body.clerk.status}` : ''}`,
        };
      } catch (err) {
        return { status: null, ok: false, deploymentId: null, detail: `health route did not answer: ${(err as Error).message}` };
      }
    },

    async promoteWorkerKey(input: { ref: string; fingerprint: string }): Promise<{ workerRef: string; how: 'already' | 'written' | 'followed'; retiredRef: string | null }> {
      const d = need('promoteWorkerKey');
      const workerRef = d.workerKey.ref;
      const current = await d.workerKey.refresh().catch(() => undefined);
      if (current && fingerprint(current) === input.fingerprint) return { workerRef, how: 'already', retiredRef: null };
      const secret = await resolve(d, input.ref);
      if (fingerprint(secret) !== input.fingerprint) throw fail('KeyChanged', `${input.ref} changed since it was verified; provide the key again`);
      if (current) held.set(fingerprint(current), current);
      if (parseKeyRef(workerRef).kind === 'env') {
        // A file reference is followed at its real path, the one that was checked.
        d.workerKey.follow(ownRef(d, input.ref) ? input.ref : await authorizeKeyRef(input.ref, d.refPolicy).catch((err: unknown) => { throw refFailure(err, input.ref); }));
        return { workerRef, how: 'followed', retiredRef: workerRef };
      }
      try {
        const { previous } = await d.resolver.store(workerRef, secret);
        await d.workerKey.refresh();
        return { workerRef, how: 'written', retiredRef: previous ?? null };
      } catch (err) {
        throw refFailure(err);
      }
    },

    async proveKeyDead(input: { fingerprint: string; retiredRef: string | null }): Promise<KeyProof> {
      const d = need('proveKeyDead');
      let secret = held.get(input.fingerprint);
      if (!secret && input.retiredRef) {
        const s = await resolve(d, input.retiredRef).catch(() => undefined);
        if (s && fingerprint(s) === input.fingerprint) secret = s;
      }
      if (!secret) return { state: 'unknown', reason: `the old key ${input.fingerprint} is not available to this worker (${input.retiredRef ?? 'no retired reference'}), so its death cannot be tested` };
      const inst = await instanceWith(d, secret);
      if (!('error' in inst)) return { state: 'alive', status: 200 };
      const e = inst.error;
      if (e instanceof ClerkError && e.status === 401 && e.code === 'clerk_key_invalid') {
        held.delete(input.fingerprint);
        // A dead key kept on disk is only clutter now.
        if (input.retiredRef?.startsWith('file:')) await unlink(input.retiredRef.slice(5)).catch(() => undefined);
        return { state: 'dead', status: 401, code: e.code };
      }
      if (e instanceof ClerkError && e.retryable) throw fail('ClerkUnavailable', `could not test the old key: ${e.message}`, false);
      return { state: 'unknown', reason: `the old key got ${e instanceof ClerkError ? `${e.status} ${e.code}` : e.message}, not 401 clerk_key_invalid` };
    },

    /** `from` null: no `exposedAt` was given; the window is the configured lookback before `to`. */
    async exposureAudit(args: { from: number | null; to: number }): Promise<ExposureAudit> {
      const clerk = deps.clerk();
      if (!clerk) throw fail('KeyRotationNotConfigured', 'exposureAudit: no Clerk gateway');
      const lookbackMs = args.from === null ? (deps.exposureLookbackMs ?? DEFAULT_EXPOSURE_LOOKBACK_MS) : null;
      const input = { from: args.from ?? args.to - lookbackMs!, to: args.to };
      const window = { createdAtAfter: input.from - 1, createdAtBefore: input.to + 1 };
      const created = await clerk.call('users.getUserList', (c) => c.users.getUserList({ limit: USERS_SHOWN, orderBy: '+created_at', ...window }), { weight: 2 });
      const usersActive = await clerk.countUsers({ lastActiveAtAfter: input.from });
      Context.current().heartbeat({ scanned: 0 });
      let sessionsCreated = 0;
      let scanned = 0;
      for (let cursor: string | undefined; scanned < Math.min(usersActive, AUDIT_USER_BOUND); ) {
        const page = await clerk.listUsers({ limit: 100, lastActiveAtAfter: input.from, ...(cursor ? { startingAfter: cursor } : {}) });
        if (!page.users.length) break;
        for (const u of page.users) {
          if (scanned >= AUDIT_USER_BOUND) break;
          scanned++;
          const sessions = await clerk.call('sessions.getSessionList', (c) => c.sessions.getSessionList({ userId: u.id, limit: 100 }));
          sessionsCreated += sessions.data.filter((s) => s.createdAt >= input.from && s.createdAt <= input.to).length;
          // Alive: a crashed worker's audit is retried after the heartbeat timeout, not the 10-minute budget.
          Context.current().heartbeat({ scanned });
        }
        cursor = page.users[page.users.length - 1]!.id;
      }
      return {
        from: new Date(input.from).toISOString(),
        lookbackMs,
        to: new Date(input.to).toISOString(),
        usersCreated: created.totalCount,
        usersCreatedIds: created.data.map((u) => u.id),
        usersActive,
        sessionsCreated,
        usersScanned: scanned,
        complete: scanned >= usersActive,
      };
    },
  };
}
