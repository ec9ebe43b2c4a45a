/**
 * The instance-config activities (src/activities/instance-config.ts) against the sandbox's
 * Platform API over HTTP, run in a MockActivityEnvironment: reads, dry runs, the version
 * precondition, a real change that new sessions follow, and failures down to their type and
 * retry decision, with the token in no message.
 */
import { createClerkClient } from '@clerk/backend';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { createInstanceConfigActivities, instanceConfigOptionsFromEnv, type InstanceConfigOptions } from '../src/activities/instance-config';
import { activityFailure } from './helpers/refusal';

const DAY = 86_400_000;
let sandbox: RunningSandbox | undefined;
afterEach(async () => {
  await sandbox?.close();
  sandbox = undefined;
});

async function setup(over: Partial<InstanceConfigOptions> = {}) {
  sandbox = await startSandbox({ users: 3, seed: 'instance-config-activities', rateLimit: 'off' });
  const p = sandbox.platform;
  const options: InstanceConfigOptions = { url: p.url, token: p.token, applicationId: p.applicationId, instance: p.instanceId, ...over };
  return { sbx: sandbox, options, acts: createInstanceConfigActivities(() => options) };
}

const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => new MockActivityEnvironment().run(fn, ...args);

const failure = activityFailure;

/** A sign-up in the sandbox, and how long its session lasts (`expire_at - created_at`, read over the Backend API). */
async function newSessionLifetime(sbx: RunningSandbox): Promise<number> {
  const res = await fetch(`${sbx.url}/__sandbox/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"count":1}' });
  const { users } = (await res.json()) as { users: { id: string }[] };
  const clerk = createClerkClient({ secretKey: sbx.secretKey, apiUrl: sbx.url });
  const { data } = await clerk.sessions.getSessionList({ userId: users[0]!.id, status: 'active' });
  return data[0]!.expireAt - data[0]!.createdAt;
}

describe('instance config activities', () => {
  it('reads the session settings and their version', async () => {
    const { acts } = await setup();
    expect(await run(acts.readSessionSettings)).toEqual({ maxLifetimeMs: 7 * DAY, inactivityTimeoutMs: null, version: '1' });
  });

  it('a dry run shows the change and changes nothing', async () => {
    const { sbx, acts } = await setup();
    const { version } = await run(acts.readSessionSettings);
    const dry = await run(acts.patchSessionSettings, { maxLifetimeMs: 30 * DAY }, { dryRun: true, version });
    expect(dry).toEqual({ dryRun: true, changed: true, before: { maxLifetimeMs: 7 * DAY, inactivityTimeoutMs: null }, after: { maxLifetimeMs: 30 * DAY, inactivityTimeoutMs: null }, version: '1' });
    expect(await run(acts.readSessionSettings)).toEqual({ maxLifetimeMs: 7 * DAY, inactivityTimeoutMs: null, version: '1' });
    expect(await newSessionLifetime(sbx)).toBe(7 * DAY);
    expect(sbx.admin.instance.configOverview().changes).toMatchObject([{ via: 'platform_api', dryRun: true }]);
  });

  it('refuses a stale version with a non-retryable InstanceConfigVersionMismatch, and changes nothing', async () => {
    const { sbx, acts } = await setup();
    const { version } = await run(acts.readSessionSettings);
    // Someone changes it in the meantime (a Dashboard edit, a drill).
    sbx.admin.instance.setSessionLifetime(60_000);
    for (const dryRun of [true, false]) {
      const f = await failure(run(acts.patchSessionSettings, { maxLifetimeMs: 30 * DAY }, { dryRun, version }));
      expect(f.type).toBe('InstanceConfigVersionMismatch');
      expect(f.nonRetryable).toBe(true);
      expect(f.details?.[0]).toMatchObject({ status: 409, code: 'conflict' });
    }
    expect(await run(acts.readSessionSettings)).toEqual({ maxLifetimeMs: 60_000, inactivityTimeoutMs: null, version: '2' });
  });

  it('a real change moves the version, and a session created after it lasts the new lifetime', async () => {
    const { sbx, acts } = await setup();
    sbx.admin.instance.setSessionLifetime(60_000); // the incident: sessions last a minute
    expect(await newSessionLifetime(sbx)).toBe(60_000);
    const current = await run(acts.readSessionSettings);
    const done = await run(acts.patchSessionSettings, { maxLifetimeMs: 7 * DAY, inactivityTimeoutMs: 2 * DAY }, { dryRun: false, version: current.version });
    expect(done).toEqual({ dryRun: false, changed: true, before: { maxLifetimeMs: 60_000, inactivityTimeoutMs: null }, after: { maxLifetimeMs: 7 * DAY, inactivityTimeoutMs: 2 * DAY }, version: '3' });
    expect(await newSessionLifetime(sbx)).toBe(2 * DAY);

    // Turning the inactivity timeout off (a destructive change to Clerk), then the same again: no change, same version.
    const off = await run(acts.patchSessionSettings, { maxLifetimeMs: 7 * DAY, inactivityTimeoutMs: null }, { dryRun: false, version: done.version });
    expect(off).toMatchObject({ changed: true, after: { maxLifetimeMs: 7 * DAY, inactivityTimeoutMs: null }, version: '4' });
    expect(await newSessionLifetime(sbx)).toBe(7 * DAY);
    const again = await run(acts.patchSessionSettings, { maxLifetimeMs: 7 * DAY }, { dryRun: false, version: off.version });
    expect(again).toMatchObject({ changed: false, version: '4' });
    expect(sbx.admin.instance.configOverview().configVersion).toBe('4');
  });

  it('types its failures, retries only outages, and keeps the token out of every message', async () => {
    const { sbx, options, acts } = await setup();
    const { version } = await run(acts.readSessionSettings);
    const seen: ApplicationFailure[] = [];

    const invalid = await failure(run(acts.patchSessionSettings, { maxLifetimeMs: 10_000 }, { dryRun: false, version }));
    expect([invalid.type, invalid.nonRetryable]).toEqual(['PlatformApiRejected', true]);
    expect(invalid.details?.[0]).toMatchObject({ status: 400, code: 'config_validation_error' });
    seen.push(invalid);

    const notSent = await failure(run(acts.patchSessionSettings, { maxLifetimeMs: 1500 }, { dryRun: false, version }));
    expect(notSent.type).toBe('PlatformApiRejected');
    expect(notSent.message).toMatch(/^not sent/);
    expect(sbx.admin.auditEntries({ route: 'PATCH /v1/platform/applications/{app}/instances/{env}/config' })).toHaveLength(1);

    const badToken = createInstanceConfigActivities(() => ({ ...options, token: 'ak_wrong_token_value_0123456789' }));
    const unauth = await failure(run(badToken.readSessionSettings));
    expect([unauth.type, unauth.nonRetryable]).toEqual(['PlatformApiRejected', true]);
    expect(unauth.message).toContain('401');
    expect(unauth.message).not.toContain('ak_wrong_token_value_0123456789');
    seen.push(unauth);

    const otherApp = createInstanceConfigActivities(() => ({ ...options, applicationId: 'app_other' }));
    const notFound = await failure(run(otherApp.readSessionSettings));
    expect(notFound.details?.[0]).toMatchObject({ status: 404, code: 'resource_not_found' });
    seen.push(notFound);

    sbx.admin.setFaults({ routes: { 'GET /v1/platform/applications/{app}/instances/{env}/config': { errorRates: { '503': 1 } } } });
    const down = await failure(run(acts.readSessionSettings));
    expect([down.type, down.nonRetryable]).toEqual(['PlatformApiUnavailable', false]);
    seen.push(down);
    sbx.admin.setFaults({});

    const noServer = createInstanceConfigActivities(() => ({ ...options, url: 'http://127.0.0.1:9' }));
    const unreachable = await failure(run(noServer.readSessionSettings));
    expect([unreachable.type, unreachable.nonRetryable]).toEqual(['PlatformApiUnavailable', false]);
    seen.push(unreachable);

    const unconfigured = await failure(run(createInstanceConfigActivities(() => undefined).readSessionSettings));
    expect([unconfigured.type, unconfigured.nonRetryable]).toEqual(['PlatformApiNotConfigured', true]);

    for (const f of seen) expect(`${f.message} ${JSON.stringify(f.details)}`).not.toContain(options.token);
  });
});

describe('instanceConfigOptionsFromEnv', () => {
  it('takes the key rotation Platform API settings; none without a token', () => {
    const env = { CLERK_PLATFORM_API_TOKEN: 'ak_x', CLERK_PLATFORM_API_URL: 'https://plapi.example', CLERK_APPLICATION_ID: 'app_1', CLERK_INSTANCE: 'production' };
    expect(instanceConfigOptionsFromEnv(env)).toEqual({ url: 'https://plapi.example', token: 'ak_x', applicationId: 'app_1', instance: 'production' });
    expect(instanceConfigOptionsFromEnv({ ...env, CLERK_PLATFORM_API_TOKEN: undefined })).toBeUndefined();
    expect(() => instanceConfigOptionsFromEnv({ ...env, CLERK_APPLICATION_ID: undefined })).toThrow(/CLERK_APPLICATION_ID/);
  });
});
