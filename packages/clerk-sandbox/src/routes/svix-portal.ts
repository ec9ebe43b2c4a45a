/**
 * The Svix app portal `webhooks.generateSvixAuthURL()` links to: a read-only page of the webhook
 * messages, where a customer would look for missed deliveries. Not rate limited nor faulted.
 */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../server-context';

export const SVIX_PORTAL_PATH = '/__sandbox/svix-portal';

export async function svixPortal(app: FastifyInstance, { admin }: ServerContext): Promise<void> {
  app.get(SVIX_PORTAL_PATH, async (_req, reply) => {
    const rows = admin
      .webhookEvents()
      .slice(-500)
      .map((e) => `<tr><td>${e.id}</td><td>${e.type}</td><td>${e.subjectId}</td><td>${e.status}</td><td>${e.attempts}</td><td>${e.createdAt}</td></tr>`)
      .join('');
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .send(`<!doctype html><title>Svix portal (Clerk SANDBOX)</title><h1>Webhook messages (Clerk SANDBOX)</h1><table><tr><th>id</th><th>type</th><th>subject</th><th>status</th><th>attempts</th><th>created</th></tr>${rows}</table>`);
  });
}
