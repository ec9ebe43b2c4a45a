/**
 * What the key rotation's activities (src/activities/key-rotation.ts) are given: the resolver,
 * the worker's own key reference, Clerk's Backend API and, optionally, the Platform API. Here,
 * below both the activities and the worker's key configuration (./worker-keys.ts), which build it.
 */
import { DEFAULT_KEY_REF_POLICY, type KeyRefPolicy } from './allowlist';
import { createKeyResolver, type KeyResolver, type KeySource } from './resolve';

export interface PlatformApiOptions {
  /** Default https://api.clerk.com (the sandbox's URL in sandbox mode). */
  url?: string;
  /** CLERK_PLATFORM_API_TOKEN: a Platform API token, not a secret key. */
  token: string;
  /** CLERK_APPLICATION_ID (`app_…`). */
  applicationId: string;
  /** CLERK_INSTANCE: the instance id (`ins_…`) or its environment (`production`). */
  instance: string;
  /** CLERK_NEW_KEY_REF: where the new key is stored (a file: or vault: reference). */
  storeRef: string;
  /** Hours the old key stays valid after the rotation (0: it dies at once). */
  delayHours: number;
}

export interface KeyRotationDeps {
  resolver: KeyResolver;
  /** The worker's key (CLERK_SECRET_KEY_REF), the one its Clerk gateway resolves per call. */
  workerKey: KeySource;
  /** Clerk's Backend API (the sandbox's URL in sandbox mode). */
  apiUrl?: string;
  platform?: PlatformApiOptions;
  /** The env var the app reads its key from (default CLERK_SECRET_KEY). */
  appKeyName?: string;
  /** Which references an incident may send (KEY_REF_ALLOWED_*, ./allowlist.ts). */
  refPolicy: KeyRefPolicy;
}

/** The worker's key rotation dependencies from its configuration (see docs/key-rotation.md). */
export function keyRotationDeps(opts: { workerKey: KeySource; resolver?: KeyResolver; apiUrl?: string; platform?: PlatformApiOptions; refPolicy?: KeyRefPolicy }): KeyRotationDeps {
  return {
    resolver: opts.resolver ?? createKeyResolver(),
    workerKey: opts.workerKey,
    refPolicy: opts.refPolicy ?? DEFAULT_KEY_REF_POLICY,
    ...(opts.apiUrl ? { apiUrl: opts.apiUrl } : {}),
    ...(opts.platform ? { platform: opts.platform } : {}),
  };
}
