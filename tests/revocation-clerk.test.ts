/** The Clerk adapter against the sandbox over real HTTP: error kinds, 429 pauses, pacing. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createClerkGateway } from '../src/activities/clerk';
import { ClerkKeyInvalid, ClerkRateLimited, ClerkRequestRejected, ClerkUnavailable, toApplicationFailure } from '../src/activities/clerk-errors';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { gatewayOptions } from './helpers/revocation';
import { ApplicationFailure } from '@temporalio/common';

let sandbox: RunningSandbox;

beforeAll(async () => {
  sandbox = await startSandbox({ users: 200, seed: 'clerk-adapter', rateLimit: 'off' });
});
afterAll(async () => {
  await sandbox?.close();
});
beforeEach(() => {
  sandbox.admin.setFaults({});
  sandbox.admin.setRateLimit('off');
  sandbox.admin.resetAudit();
});

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

describe('Clerk gateway', () => {
  it('names a refused key ClerkKeyInvalid, with the code and trace id, and does not retry it', async () => {
    const gateway = createClerkGateway(gatewayOptions(sandbox, { secretKey: 'sk_test_neverIssuedKey000000000' }));
    const err = await rejection(gateway.countUsers());
    expect(err).toBeInstanceOf(ClerkKeyInvalid);
    const e = err as ClerkKeyInvalid;
    expect(e).toMatchObject({ name: 'ClerkKeyInvalid', status: 401, code: 'clerk_key_invalid', retryable: false });
    expect(e.clerkTraceId).toMatch(/\w+/);
    expect(e.message).toContain(e.clerkTraceId);
    expect(sandbox.admin.auditSummary().total).toBe(1);
    const failure = toApplicationFailure(err) as ApplicationFailure;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'ClerkKeyInvalid', nonRetryable: true });
    expect(failure.details?.[0]).toMatchObject({ status: 401, code: 'clerk_key_invalid', clerkTraceId: e.clerkTraceId });
  });

  it('names a 4xx ClerkRequestRejected and a revoke of an inactive session "not_active"', async () => {
    const gateway = createClerkGateway(gatewayOptions(sandbox));
    const err = await rejection(gateway.getSession('sess_doesNotExist'));
    expect(err).toBeInstanceOf(ClerkRequestRejected);
    expect(err).toMatchObject({ status: 404, code: 'resource_not_found', retryable: false });
    const [session] = sandbox.admin.sessionIds('active');
    expect(await gateway.revokeSession(session!)).toBe('revoked');
    expect(await gateway.revokeSession(session!)).toBe('not_active');
  });

  it('waits out Retry-After on a 429 for every caller, then succeeds; without retries it is ClerkRateLimited', async () => {
    sandbox.admin.setRateLimit({ requests: 5, windowMs: 1000 });
    const gateway = createClerkGateway(gatewayOptions(sandbox, { concurrency: 8 }));
    const started = Date.now();
    const counts = await Promise.all(Array.from({ length: 12 }, () => gateway.countUsers()));
    expect(counts).toEqual(Array.from({ length: 12 }, () => 200));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    const stats = gateway.stats();
    expect(stats.rateLimited).toBeGreaterThan(0);
    expect(stats.requests).toBe(12 + stats.rateLimited);

    sandbox.admin.setRateLimit({ requests: 1, windowMs: 30_000 });
    const once = (retry: boolean) => gateway.call('users.getCount', (c) => c.users.getCount(), { retry });
    expect(await once(false)).toBe(200);
    const err = await rejection(once(false));
    expect(err).toBeInstanceOf(ClerkRateLimited);
    expect((err as ClerkRateLimited).retryAfterMs).toBeGreaterThanOrEqual(20_000);
    const failure = toApplicationFailure(err) as ApplicationFailure;
    expect(failure).toMatchObject({ type: 'ClerkRateLimited', nonRetryable: false });
    expect(failure.nextRetryDelay).toBe((err as ClerkRateLimited).retryAfterMs);
  });

  it('paces requests to the configured rate minus headroom', async () => {
    const gateway = createClerkGateway(
      gatewayOptions(sandbox, { limit: { requests: 100, windowMs: 1000, headroom: 0.5 }, concurrency: 16 }),
    );
    expect(gateway.settings).toMatchObject({ requestsPerWindow: 50, minTimeMs: 20 });
    const started = Date.now();
    await Promise.all(Array.from({ length: 26 }, () => gateway.countUsers()));
    // 26 evenly spaced starts at 50/s take 25 × 20 ms: not faster, and not far slower either (a
    // limiter that throttles too much fails here; 3× leaves room for a slow, busy 2-core machine).
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(480);
    expect(elapsed).toBeLessThanOrEqual(3 * 500);
  });

  it('retries 5xx, an HTML 502 and network errors, then gives up as ClerkUnavailable (retryable)', async () => {
    sandbox.admin.setFaults({ errorRates: { '502': 1 } });
    const gateway = createClerkGateway(gatewayOptions(sandbox, { retry: { maxUnavailableAttempts: 3, initialBackoffMs: 5, maxBackoffMs: 10 } }));
    const err = await rejection(gateway.countUsers());
    expect(err).toBeInstanceOf(ClerkUnavailable);
    expect(err).toMatchObject({ status: 502, retryable: true });
    expect(gateway.stats()).toMatchObject({ requests: 3, unavailable: 3, retries: 2 });
    expect(toApplicationFailure(err)).toMatchObject({ type: 'ClerkUnavailable', nonRetryable: false });

    sandbox.admin.setFaults({ errorRates: { '503': 0.5 } });
    expect(await gateway.countUsers()).toBe(200);

    // Nothing listens on a closed port: a network error, no status.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const offline = createClerkGateway(
      gatewayOptions(sandbox, { apiUrl: `http://127.0.0.1:${port}`, retry: { maxUnavailableAttempts: 2, initialBackoffMs: 5 } }),
    );
    const network = await rejection(offline.countUsers());
    expect(network).toBeInstanceOf(ClerkUnavailable);
    expect((network as ClerkUnavailable).status).toBeUndefined();
  });
});
