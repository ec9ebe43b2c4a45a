/** The HTTP-failure base both Clerk's and the deployment platforms' errors extend: one status sorting, one ApplicationFailure mapping. */
import { ClerkAPIResponseError } from '@clerk/backend/errors';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { classifyClerkError, ClerkError, toApplicationFailure } from '../src/activities/clerk-errors';
import { errorForStatus, toDeployFailure } from '../src/activities/deploy/errors';
import { failureKind, HttpFailure } from '../src/activities/http-errors';

const clerkAnswer = (status: number, code: string, retryAfter?: number) =>
  new ClerkAPIResponseError('failed', { data: [{ code, message: `${code} said`, long_message: `${code} in full` }], status, ...(retryAfter !== undefined ? { retryAfter } : {}) });

describe('failureKind', () => {
  it.each([
    [undefined, [401], 'unavailable'],
    [503, [401], 'unavailable'],
    [429, [401], 'rate_limited'],
    [401, [401], 'auth_failed'],
    [403, [401], 'rejected'],
    [403, [401, 403], 'auth_failed'],
    [404, [401, 403], 'rejected'],
  ] as const)('status %s with auth statuses %j is %s', (status, auth, kind) => {
    expect(failureKind(status, auth)).toBe(kind);
  });
});

describe('Clerk and deploy errors on one base', () => {
  it('keep their names, retry decisions and sorting: Clerk calls a 403 rejected unless its code says the key is bad; a platform calls it auth', () => {
    const clerk = [clerkAnswer(503, 'server_error'), clerkAnswer(429, 'too_many_requests', 3), clerkAnswer(401, 'clerk_key_invalid'), clerkAnswer(403, 'clerk_key_invalid'), clerkAnswer(403, 'forbidden')].map(
      (e) => classifyClerkError(e, 'users.getUserList') as ClerkError,
    );
    expect(clerk.map((e) => [e.name, e.retryable, e.status])).toEqual([
      ['ClerkUnavailable', true, 503],
      ['ClerkRateLimited', true, 429],
      ['ClerkKeyInvalid', false, 401],
      ['ClerkKeyInvalid', false, 403],
      ['ClerkRequestRejected', false, 403],
    ]);
    for (const e of clerk) expect(e).toBeInstanceOf(HttpFailure);
    const deploy = [503, 429, 401, 403, 404].map((status) => errorForStatus('vercel', 'GET /v6/deployments', status, {}));
    expect(deploy.map((e) => [e.name, e.retryable])).toEqual([
      ['DeployUnavailable', true],
      ['DeployRateLimited', true],
      ['DeployAuthFailed', false],
      ['DeployAuthFailed', false],
      ['DeployRequestRejected', false],
    ]);
  });

  it("map to an ApplicationFailure of the same type: Clerk's with Retry-After and its error as the cause, a platform's with its details", () => {
    const limited = toApplicationFailure(clerkAnswer(429, 'too_many_requests', 3), 'sessions.revokeSession');
    expect(limited).toBeInstanceOf(ApplicationFailure);
    expect(limited).toMatchObject({ type: 'ClerkRateLimited', nonRetryable: false, nextRetryDelay: 3000, details: [{ operation: 'sessions.revokeSession', status: 429, code: 'too_many_requests' }] });
    expect((limited as ApplicationFailure).cause).toMatchObject({ name: 'ClerkRateLimited' });
    const denied = toDeployFailure(errorForStatus('webhook', 'POST /deploy', 401, { code: 'bad_signature' }, 5000));
    expect(denied).toMatchObject({ type: 'DeployAuthFailed', nonRetryable: true, nextRetryDelay: 5000, details: [{ adapter: 'webhook', operation: 'POST /deploy', status: 401, code: 'bad_signature' }] });
    expect((denied as ApplicationFailure).cause).toBeUndefined();
  });
});
