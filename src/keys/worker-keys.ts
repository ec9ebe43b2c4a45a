/**
 * The worker's key configuration (docs/key-rotation.md): the reference its Clerk gateway resolves
 * per call, the resolver (Vault when configured) and the optional Platform API rotation. Shared by
 * the standalone worker and `npm start` (which, in sandbox mode, keeps the sandbox's key in a file
 * and rotates through the sandbox's Platform API and Vault).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Env } from '../config';
import { keyRotationDeps, type KeyRotationDeps, type PlatformApiOptions } from './rotation';
import { createKeyResolver, createKeySource, type KeyResolver, type KeySource } from './resolve';
import { keyRefSchema } from './ref';
import { keyRefPolicyFromEnv } from './allowlist';

export interface WorkerKeys {
  /** The key resolved at start (sets the instance type and limits). */
  secretKey: string;
  keySource: KeySource;
  rotation: KeyRotationDeps;
}

/** Resolves the configured reference once at start, so a wrong reference stops the worker with a clear message. */
export async function workerKeysFromEnv(env: Env, opts: { apiUrl?: string; sandbox?: { keyFile: string; secretKey: string; vault: { addr: string; token: string }; platform: { url: string; token: string; applicationId: string; instanceId: string } } } = {}): Promise<WorkerKeys> {
  const vault = opts.sandbox?.vault ?? (env.VAULT_ADDR && env.VAULT_TOKEN ? { addr: env.VAULT_ADDR, token: env.VAULT_TOKEN, ...(env.VAULT_NAMESPACE ? { namespace: env.VAULT_NAMESPACE } : {}) } : undefined);
  const resolver: KeyResolver = createKeyResolver(vault ? { vault } : {});
  let ref: string;
  if (opts.sandbox) {
    mkdirSync(dirname(opts.sandbox.keyFile), { recursive: true });
    writeFileSync(opts.sandbox.keyFile, `${opts.sandbox.secretKey}\n`, { mode: 0o600 });
    ref = `file:${opts.sandbox.keyFile}`;
  } else {
    const parsed = keyRefSchema.safeParse(env.CLERK_SECRET_KEY_REF ?? 'env:CLERK_SECRET_KEY');
    if (!parsed.success) throw new Error(`CLERK_SECRET_KEY_REF: ${parsed.error.issues[0]?.message}`);
    ref = parsed.data;
  }
  const keySource = createKeySource(ref, resolver);
  const secretKey = await keySource.current().catch((err: unknown) => {
    throw new Error(`the worker's Clerk key: ${(err as Error).message}`);
  });
  let platform: PlatformApiOptions | undefined;
  if (opts.sandbox) {
    const p = opts.sandbox.platform;
    platform = { url: p.url, token: p.token, applicationId: p.applicationId, instance: p.instanceId, storeRef: 'vault:secret/clerk#next_secret_key', delayHours: env.CLERK_OLD_KEY_EXPIRY_HOURS };
  } else if (env.CLERK_PLATFORM_API_TOKEN) {
    if (!env.CLERK_APPLICATION_ID || !env.CLERK_NEW_KEY_REF) throw new Error('CLERK_PLATFORM_API_TOKEN needs CLERK_APPLICATION_ID and CLERK_NEW_KEY_REF (where the new key is stored)');
    const storeRef = keyRefSchema.safeParse(env.CLERK_NEW_KEY_REF);
    if (!storeRef.success) throw new Error(`CLERK_NEW_KEY_REF: ${storeRef.error.issues[0]?.message}`);
    platform = {
      ...(env.CLERK_PLATFORM_API_URL ? { url: env.CLERK_PLATFORM_API_URL } : {}),
      token: env.CLERK_PLATFORM_API_TOKEN,
      applicationId: env.CLERK_APPLICATION_ID,
      instance: env.CLERK_INSTANCE,
      storeRef: storeRef.data,
      delayHours: env.CLERK_OLD_KEY_EXPIRY_HOURS,
    };
  }
  const apiUrl = opts.apiUrl ?? env.CLERK_API_URL;
  return { secretKey, keySource, rotation: keyRotationDeps({ workerKey: keySource, resolver, refPolicy: keyRefPolicyFromEnv(env), ...(apiUrl ? { apiUrl } : {}), ...(platform ? { platform } : {}) }) };
}
