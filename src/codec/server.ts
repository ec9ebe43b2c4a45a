/**
 * The codec server the Temporal UI calls to show encrypted payloads as plain JSON
 * (docs/payload-encryption.md): `POST /decode` and `POST /encode` take and return
 * `{ payloads: [{ metadata: { <name>: <base64> }, data: <base64> }] }`, the JSON form of
 * `temporal.api.common.v1.Payload` the UI sends. Only for the configured `Host` names (DNS
 * rebinding) and the UI's origin (a request from another origin is refused, not just left without CORS); with
 * CODEC_SERVER_TOKEN, callers must send `Authorization: Bearer <token>`.
 * `npm start` runs it when a key is configured; `npm run codec-server` runs it alone.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { codecFromEnv } from '.';
import { loadEnv, type Env } from '../config';
import { exitQuietlyWhenOutputCloses } from '../stdio';

export const CODEC_ALLOWED_HEADERS = 'x-namespace, content-type, authorization';

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
const bodySchema = z.object({
  payloads: z.array(z.object({ metadata: z.record(z.string(), base64).nullish(), data: base64.nullish() })),
});
type JsonPayload = z.infer<typeof bodySchema>['payloads'][number];

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')])),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Origins allowed by CORS (the Temporal UI's), e.g. `http://localhost:8233`. */
  allowedOrigins: string[];
  /** When set, `Authorization: Bearer <token>` is required on /encode and /decode. */
  token?: string | undefined;
  /**
   * `Host` values it answers (`name[:port]`, a name alone meaning its own port), so a page whose
   * DNS rebinds to 127.0.0.1 is refused. Default: the loopback names (127.0.0.1, localhost, [::1]).
   */
  allowedHosts?: string[] | undefined;
}

const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '[::1]'];

/** `name[:port]` lowercased, with the server's port when none is given (`[::1]` kept bracketed). */
function hostWithPort(entry: string, port: number): string {
  const host = entry.trim().toLowerCase();
  return /:\d+$/.test(host) && (!host.startsWith('[') || host.includes(']:')) ? host : `${host}:${port}`;
}

const sameSecret = (a: string, b: string) => {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
};

export function createCodecServer(opts: CodecServerOptions): FastifyInstance {
  // Histories hold payloads up to the server's 2 MB limit each; the UI sends several at once.
  const app = Fastify({ logger: false, bodyLimit: 32 * 1024 * 1024 });
  const origins = new Set(opts.allowedOrigins.map((o) => new URL(o).origin));

  const cors = (request: FastifyRequest, reply: FastifyReply) => {
    const origin = request.headers.origin;
    if (origin && origins.has(origin)) {
      reply.header('access-control-allow-origin', origin);
      // The UI may send its own login's credentials ("include cross-origin credentials").
      reply.header('access-control-allow-credentials', 'true');
    }
    reply.header('vary', 'origin');
  };
  const ownPort = () => {
    const address = app.server.address();
    return typeof address === 'object' && address ? address.port : 0;
  };
  const hosts = () => (opts.allowedHosts?.length ? opts.allowedHosts : LOOPBACK_HOSTS).map((h) => hostWithPort(h, ownPort()));
  app.addHook('onRequest', async (request, reply) => {
    // DNS rebinding: a page on evil.com whose name resolves to 127.0.0.1 sends `Host: evil.com`.
    const host = (request.headers.host ?? '').toLowerCase();
    const allowed = hosts();
    if (!allowed.includes(host)) {
      return reply.code(403).send({ error: `Host ${JSON.stringify(request.headers.host ?? '')} is not one this codec server answers (${allowed.join(', ')}; CODEC_ALLOWED_HOSTS adds others)` });
    }
    const origin = request.headers.origin;
    if (origin !== undefined && !origins.has(origin)) {
      return reply.code(403).send({ error: `Origin ${JSON.stringify(origin)} may not call this codec server (CODEC_CORS_ORIGINS: ${[...origins].join(', ')})` });
    }
    cors(request, reply);
  });

  const authorized = (request: FastifyRequest) => !opts.token || sameSecret(request.headers.authorization ?? '', `Bearer ${opts.token}`);

  for (const op of ['encode', 'decode'] as const) {
    app.options(`/${op}`, async (_request, reply) =>
      reply
        .code(204)
        .header('access-control-allow-methods', 'POST, OPTIONS')
        .header('access-control-allow-headers', CODEC_ALLOWED_HEADERS)
        .header('access-control-max-age', '600')
        .send(),
    );
    app.post(`/${op}`, async (request, reply) => {
      if (!authorized(request)) return reply.code(401).send({ error: 'missing or wrong bearer token (Authorization: Bearer <CODEC_SERVER_TOKEN>)' });
      const parsed = bodySchema.safeParse(request.body);
      if (!parsed.success) {
        return reply.code(400).send({ error: parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') });
      }
      try {
        const payloads = await opts.codec[op](parsed.data.payloads.map(fromJson));
        return { payloads: payloads.map(toJson) };
      } catch (err) {
        // An unknown key id or a tampered payload: the caller can act on the message, nothing secret is in it.
        return reply.code(422).send({ error: err instanceof Error ? err.message : String(err) });
      }
    });
  }
  return app;
}

export interface RunningCodecServer {
  url: string;
  close(): Promise<void>;
}

export async function startCodecServer(opts: CodecServerOptions & { host?: string; port?: number }): Promise<RunningCodecServer> {
  const app = createCodecServer(opts);
  const host = opts.host ?? '127.0.0.1';
  await app.listen({ host, port: opts.port ?? 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return { url: `http://${host}:${port}`, close: () => app.close() };
}

/** Who may call the codec server: CODEC_CORS_ORIGINS, else the Temporal UI (TEMPORAL_UI_URL, or the dev server's UI by either local name). */
export function codecServerOrigins(env: Env): string[] {
  if (env.CODEC_CORS_ORIGINS.length) return env.CODEC_CORS_ORIGINS;
  return [
    ...(env.TEMPORAL_UI_URL ? [new URL(env.TEMPORAL_UI_URL).origin] : []),
    `http://localhost:${env.TEMPORAL_UI_PORT}`,
    `http://127.0.0.1:${env.TEMPORAL_UI_PORT}`,
  ];
}

/** The codec server the environment configures, or undefined when no key is set. */
export async function startCodecServerFromEnv(env: Env): Promise<RunningCodecServer | undefined> {
  const codec = codecFromEnv(env);
  if (!codec) return undefined;
  return startCodecServer({ codec, allowedOrigins: codecServerOrigins(env), token: env.CODEC_SERVER_TOKEN, port: env.CODEC_SERVER_PORT, allowedHosts: env.CODEC_ALLOWED_HOSTS });
}

async function main(): Promise<void> {
  const env = loadEnv();
  const server = await startCodecServerFromEnv(env);
  if (!server) throw new Error('no payload key configured: set PAYLOAD_KEYS_FILE or PAYLOAD_KEY (docs/payload-encryption.md)');
  console.log(`codec server at ${server.url} (POST /encode, /decode) for ${codecServerOrigins(env).join(', ')}${env.CODEC_SERVER_TOKEN ? '; bearer token required' : ''}`);
  console.log(`Temporal UI: set the codec endpoint to ${server.url} (its codec server setting, in the top bar), or start the dev server with --ui-codec-endpoint ${server.url}`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (require.main === module) {
  exitQuietlyWhenOutputCloses('keep-running');
  main().catch((err: unknown) => {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
