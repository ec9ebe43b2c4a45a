/**
 * An app's Clerk webhook endpoint, as small as it can be and still correct: it verifies the Svix
 * signature with `verifyWebhook` from `@clerk/backend/webhooks`, applies `user.created`,
 * `user.updated` and `user.deleted` to the user store (SQLite or PostgreSQL, `src/stores`) once per
 * `svix-id` (a redelivery answers 200 and changes nothing), and ignores other events.
 *
 * The runbook's tests use it as the real consumer of both the sandbox's deliveries and the
 * reconciliation's replayed events; `npm start` runs one in sandbox mode. Run it alone:
 *   USER_STORE_URL=sqlite:.data/users.db CLERK_WEBHOOK_SIGNING_SECRET=whsec_… npm run webhook-receiver
 */
import { verifyWebhook } from '@clerk/backend/webhooks';
import Fastify, { type FastifyInstance } from 'fastify';
import { openUserStore, storedUserFromClerk, type StoreChange, type UserStore } from '../../src/stores';

export const WEBHOOK_PATH = '/api/webhooks/clerk';

export interface WebhookReceiverOptions {
  store: UserStore;
  /** `whsec_…`: the endpoint's signing secret. */
  signingSecret: string;
  host?: string;
  /** 0 (default): a free port. */
  port?: number;
}

export interface RunningReceiver {
  /** The endpoint's URL (`…/api/webhooks/clerk`). */
  url: string;
  port: number;
  /** What it did since it started: applied, duplicates (same `svix-id`), ignored (other event types), refused (bad signature or body). */
  readonly counts: { applied: number; duplicates: number; ignored: number; refused: number };
  close(): Promise<void>;
}

export async function startWebhookReceiver(opts: WebhookReceiverOptions): Promise<RunningReceiver> {
  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: 1_048_576 });
  const counts = { applied: 0, duplicates: 0, ignored: 0, refused: 0 };
  // The signature covers the exact bytes: keep the body as text.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.post(WEBHOOK_PATH, async (req, reply) => {
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
    const request = new Request(`http://${req.headers.host ?? 'localhost'}${req.url}`, { method: 'POST', headers, body: String(req.body ?? '') });
    let event;
    try {
      event = await verifyWebhook(request, { signingSecret: opts.signingSecret });
    } catch (err) {
      counts.refused++;
      return reply.code(400).send({ error: 'invalid_signature', message: err instanceof Error ? err.message : String(err) });
    }
    const svixId = req.headers['svix-id'] as string;
    let change: StoreChange | null = null;
    if (event.type === 'user.created' || event.type === 'user.updated') change = { type: 'upsert', user: storedUserFromClerk(event.data) };
    else if (event.type === 'user.deleted' && event.data.id) change = { type: 'delete', id: event.data.id };
    if (!change) {
      counts.ignored++;
      return reply.code(200).send({ ok: true, ignored: event.type });
    }
    const fresh = await opts.store.apply(change, svixId);
    if (fresh) counts.applied++;
    else counts.duplicates++;
    return reply.code(200).send({ ok: true, duplicate: !fresh });
  });

  const address = await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  const port = Number(new URL(address).port);
  return {
    url: `${address}${WEBHOOK_PATH}`,
    port,
    counts,
    close: () => app.close(),
  };
}

async function main(): Promise<void> {
  const storeUrl = process.env.USER_STORE_URL ?? 'sqlite:.data/users.db';
  const secret = process.env.CLERK_WEBHOOK_SIGNING_SECRET;
  if (!secret?.startsWith('whsec_')) throw new Error('CLERK_WEBHOOK_SIGNING_SECRET must be set to the endpoint signing secret (whsec_…)');
  const store = openUserStore(storeUrl);
  await store.ensureSchema();
  const receiver = await startWebhookReceiver({ store, signingSecret: secret, port: Number(process.env.WEBHOOK_RECEIVER_PORT ?? 8236) });
  console.log(`webhook receiver on ${receiver.url}, store ${storeUrl}`);
  const stop = () => void receiver.close().then(() => store.close());
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
