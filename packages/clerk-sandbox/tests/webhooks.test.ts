import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhook } from '@clerk/backend/webhooks';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signSvix, type RunningSandbox } from '../src';
import { sandboxWithClient } from './helpers';
import type { ClerkClient } from '@clerk/backend';

interface Received {
  type: string;
  id: string;
  verified: boolean;
  data: Record<string, unknown>;
  error?: string;
}

let receiver: Server;
let receiverUrl: string;
let received: Received[] = [];
let sandbox: RunningSandbox;
let clerk: ClerkClient;

beforeAll(async () => {
  // The app's webhook endpoint: verifies every delivery with the SDK's own verifyWebhook.
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      const request = new Request(`http://localhost${req.url}`, { method: 'POST', headers, body: Buffer.concat(chunks) });
      verifyWebhook(request, { signingSecret: sandbox.webhookSigningSecret })
        .then((evt) => {
          received.push({ type: evt.type, id: headers.get('svix-id') ?? '', verified: true, data: evt.data as unknown as Record<string, unknown> });
          res.writeHead(204).end();
        })
        .catch((err: unknown) => {
          received.push({ type: '?', id: headers.get('svix-id') ?? '', verified: false, data: {}, error: String(err) });
          res.writeHead(400).end();
        });
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks/clerk`;
  ({ sandbox, clerk } = await sandboxWithClient({ users: 30, seed: 'hooks', webhookUrl: receiverUrl }));
});
afterAll(async () => {
  await sandbox.close();
  await new Promise((r) => receiver.close(r));
});
beforeEach(() => {
  received = [];
  sandbox.admin.setWebhooks({ url: receiverUrl, drop: false, dropRate: 0 });
});

describe('webhooks', () => {
  it('delivers session.revoked signed as Svix signs, verified by verifyWebhook', async () => {
    const [sessionId] = sandbox.admin.sessionIds('active');
    await clerk.sessions.revokeSession(sessionId!);
    await sandbox.admin.webhooksIdle();
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ type: 'session.revoked', verified: true });
    expect(received[0]?.data).toMatchObject({ id: sessionId, status: 'revoked', object: 'session' });
    expect((received[0]?.data.user as { id: string }).id).toMatch(/^user_/);
    expect(sandbox.admin.webhookEvents({ type: 'session.revoked' })[0]).toMatchObject({ status: 'delivered', attempts: 1 });
  });

  it('delivers user.created, session.created and user.deleted for users made and deleted at run time', async () => {
    const [user] = sandbox.admin.createUsers({ count: 1 });
    await clerk.users.deleteUser(user!.id);
    await sandbox.admin.webhooksIdle();
    expect(received.map((r) => r.type).sort()).toEqual(['session.created', 'session.removed', 'user.created', 'user.deleted']);
    expect(received.every((r) => r.verified)).toBe(true);
    expect(received.find((r) => r.type === 'user.deleted')?.data).toEqual({ deleted: true, id: user!.id, object: 'user' });
  });

  it('a wrong secret or a tampered body fails verification', async () => {
    const body = '{"type":"user.created","data":{}}';
    const ts = Math.floor(Date.now() / 1000);
    const headers = { 'svix-id': 'msg_1', 'svix-timestamp': String(ts), 'svix-signature': signSvix(sandbox.webhookSigningSecret, 'msg_1', ts, body) };
    const good = new Request('http://x/', { method: 'POST', headers, body });
    await expect(verifyWebhook(good, { signingSecret: sandbox.webhookSigningSecret })).resolves.toMatchObject({ type: 'user.created' });
    const tampered = new Request('http://x/', { method: 'POST', headers, body: body.replace('user.created', 'user.deleted') });
    await expect(verifyWebhook(tampered, { signingSecret: sandbox.webhookSigningSecret })).rejects.toThrow();
  });

  it('drops deliveries while the switch is on, and replays them on request', async () => {
    const put = await fetch(`${sandbox.url}/__sandbox/webhooks`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"drop":true}' });
    expect(put.status).toBe(200);
    const created = sandbox.admin.createUsers({ count: 3 });
    await sandbox.admin.webhooksIdle();
    expect(received).toHaveLength(0);
    const dropped = sandbox.admin.webhookEvents({ status: 'dropped' });
    expect(dropped.filter((e) => e.type === 'user.created').map((e) => e.subjectId).sort()).toEqual(created.map((u) => u.id).sort());
    sandbox.admin.setWebhooks({ drop: false });
    const replay = sandbox.admin.replayWebhooks({ eventIds: dropped.map((e) => e.id) });
    expect(replay.replayed).toHaveLength(dropped.length);
    await sandbox.admin.webhooksIdle();
    expect(received.filter((r) => r.type === 'user.created')).toHaveLength(3);
    expect(received.every((r) => r.verified)).toBe(true);
  });

  it('drops a seeded fraction with dropRate', async () => {
    sandbox.admin.setWebhooks({ dropRate: 0.5 });
    sandbox.admin.createUsers({ count: 40 });
    await sandbox.admin.webhooksIdle();
    const delivered = received.filter((r) => r.type === 'user.created').length;
    expect(delivered).toBeGreaterThan(8);
    expect(delivered).toBeLessThan(32);
  });

  it('marks deliveries failed when the endpoint refuses, after retries', async () => {
    sandbox.admin.setWebhooks({ url: 'http://127.0.0.1:9/unreachable' });
    sandbox.admin.createUsers({ count: 1 });
    await sandbox.admin.webhooksIdle();
    const failed = sandbox.admin.webhookEvents({ status: 'failed' });
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect(failed[0]?.attempts).toBe(3);
  });
});
