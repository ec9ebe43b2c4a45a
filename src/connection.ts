/**
 * How every process here dials Temporal: the worker (`NativeConnection`), `npm start`, the CLIs and
 * scripts (`Connection`) all take their options from `temporalConnectionOptions(env)`, so a
 * secured cluster or Temporal Cloud is configured once, by environment variables:
 *
 * - `TEMPORAL_API_KEY`: Temporal Cloud API key (sent as `Authorization: Bearer …`; TLS on).
 * - `TEMPORAL_TLS_CERT` + `TEMPORAL_TLS_KEY`: client certificate and key files (mTLS), together.
 * - `TEMPORAL_TLS_CA`: the server's root CA file, when the system's roots do not know it.
 * - `TEMPORAL_TLS_SERVER_NAME`: the name the server's certificate carries, when it is not the host.
 * - `TEMPORAL_TLS=true`: TLS with none of the above (server-side TLS only).
 *
 * The schema below is part of `envSchema` (src/config.ts): a missing file or a lone cert fails at
 * start-up with the variable's name. Files are read when the options are built, not at parse time.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { ConnectionOptions } from '@temporalio/client';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { z } from 'zod';

const optionalTrimmed = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const readableFile = optionalTrimmed.superRefine((path, ctx) => {
  if (path === undefined) return;
  if (!existsSync(path) || !statSync(path).isFile()) ctx.addIssue({ code: 'custom', message: `no such file: ${path}` });
});

/** Fields of `envSchema` (src/config.ts); the cross-field rule is `checkTemporalConnectionEnv`. */
export const temporalConnectionEnvShape = {
  TEMPORAL_API_KEY: optionalTrimmed,
  TEMPORAL_TLS: z
    .enum(['true', 'false', '1', '0', ''])
    .optional()
    .transform((v) => v === 'true' || v === '1'),
  TEMPORAL_TLS_CERT: readableFile,
  TEMPORAL_TLS_KEY: readableFile,
  TEMPORAL_TLS_CA: readableFile,
  TEMPORAL_TLS_SERVER_NAME: optionalTrimmed,
};

export interface TemporalConnectionEnv {
  TEMPORAL_ADDRESS: string;
  TEMPORAL_NAMESPACE: string;
  TEMPORAL_API_KEY?: string | undefined;
  TEMPORAL_TLS: boolean;
  TEMPORAL_TLS_CERT?: string | undefined;
  TEMPORAL_TLS_KEY?: string | undefined;
  TEMPORAL_TLS_CA?: string | undefined;
  TEMPORAL_TLS_SERVER_NAME?: string | undefined;
}

/** zod `superRefine` for the whole environment: a client certificate needs its key and the other way round. */
export function checkTemporalConnectionEnv(env: Partial<TemporalConnectionEnv>, ctx: z.RefinementCtx): void {
  if (env.TEMPORAL_TLS_CERT && !env.TEMPORAL_TLS_KEY) {
    ctx.addIssue({ code: 'custom', path: ['TEMPORAL_TLS_KEY'], message: 'required with TEMPORAL_TLS_CERT (mTLS needs the certificate and its key)' });
  }
  if (env.TEMPORAL_TLS_KEY && !env.TEMPORAL_TLS_CERT) {
    ctx.addIssue({ code: 'custom', path: ['TEMPORAL_TLS_CERT'], message: 'required with TEMPORAL_TLS_KEY (mTLS needs the certificate and its key)' });
  }
}

/** The options both `Connection.connect` and `NativeConnection.connect` take (their common part). */
export type TemporalConnectionOptions = Pick<ConnectionOptions & NativeConnectionOptions, 'address' | 'tls' | 'apiKey' | 'metadata'> & {
  address: string;
  apiKey?: string;
  metadata?: Record<string, string>;
};

/** Whether the connection is secured (TLS), for log lines; never prints a secret. */
export function describeTemporalConnection(env: TemporalConnectionEnv): string {
  const security = env.TEMPORAL_TLS_CERT ? ', mTLS' : usesTls(env) ? ', TLS' : '';
  return `${env.TEMPORAL_ADDRESS} (namespace ${env.TEMPORAL_NAMESPACE}${security}${env.TEMPORAL_API_KEY ? ', API key' : ''})`;
}

export function usesTls(env: TemporalConnectionEnv): boolean {
  return Boolean(env.TEMPORAL_TLS || env.TEMPORAL_API_KEY || env.TEMPORAL_TLS_CERT || env.TEMPORAL_TLS_CA || env.TEMPORAL_TLS_SERVER_NAME);
}

/**
 * Connection options from the environment, for the worker and for clients alike. `address`
 * overrides TEMPORAL_ADDRESS (e.g. the dev server `npm start` just started). With an API key the
 * namespace also goes in the `temporal-namespace` header, as Temporal Cloud's namespace endpoints
 * expect.
 */
export function temporalConnectionOptions(env: TemporalConnectionEnv, address: string = env.TEMPORAL_ADDRESS): TemporalConnectionOptions {
  if (!usesTls(env)) return { address };
  const tls: NonNullable<Exclude<ConnectionOptions['tls'], boolean | null>> = {};
  if (env.TEMPORAL_TLS_CERT && env.TEMPORAL_TLS_KEY) {
    tls.clientCertPair = { crt: readFileSync(env.TEMPORAL_TLS_CERT), key: readFileSync(env.TEMPORAL_TLS_KEY) };
  }
  if (env.TEMPORAL_TLS_CA) tls.serverRootCACertificate = readFileSync(env.TEMPORAL_TLS_CA);
  if (env.TEMPORAL_TLS_SERVER_NAME) tls.serverNameOverride = env.TEMPORAL_TLS_SERVER_NAME;
  return {
    address,
    tls,
    ...(env.TEMPORAL_API_KEY ? { apiKey: env.TEMPORAL_API_KEY, metadata: { 'temporal-namespace': env.TEMPORAL_NAMESPACE } } : {}),
  };
}
