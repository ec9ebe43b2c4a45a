/**
 * key_compromise end to end with the rotation automated (real dev server, sandbox over HTTP): the
 * worker's key is a file: reference, the app is deployed on the sandbox's Vercel. Proofs come from
 * the sandbox's own records: its key ring, its audit log (a request with the deleted key got 401),
 * its Vercel log (one env upsert, one redeploy) and its sessions.
 */
import { mkdtempSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { IncidentInput } from '../src/domain';
import { createClerkGateway } from '../src/activities/clerk';
import { createKeyRotationActivities } from '../src/activities/key-rotation';
import { MockActivityEnvironment } from '@temporalio/testing';
import { loadEnv } from '../src/config';
import { fingerprint } from '../src/keys/resolve';
import { workerKeysFromEnv } from '../src/keys/worker-keys';
import { startSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { approveStep, confirmOldKeyDeleted, getIncidentState, getReview, incidentWorkflow, provideNewKey, type IncidentState } from '../src/workflows/incident';
import { findSecrets } from './helpers/history-scan';
import { activeSessions } from './helpers/revocation';
import { rotationDeps, rotationSetup, startRotationWorker } from './helpers/rotation';
import { waitForState } from './helpers/incident';
import { refusal } from './helpers/refusal';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
beforeAll(async () => {
  temporal = await connectTemporal();
});
afterAll(async () => {
  await temporal?.close();
});

const fast = { escalateAfter: '40s', decideWithin: '90s', probe: '2s' };
const people = { reporter: 'alice', approvers: ['alice', 'bob', 'carol'] };
const outcomes = (s: IncidentState) => Object.fromEntries(s.steps.map((x) => [x.step, x.outcome]));
const lastNote = (s: IncidentState, step: string) => [...s.steps].reverse().find((x) => x.step === step)?.note ?? '';
const said = (s: IncidentState, step: string, re: RegExp) => s.timeline.some((e) => e.step === step && re.test(e.description));
const waitingFor = (text: string) => (s: IncidentState) => s.waitingFor.includes(text);

async function approveBoth(handle: WorkflowHandle, step: 'rotate_secret_key' | 'revoke_all_sessions'): Promise<void> {
  await waitForState(handle, getIncidentState, (s) => s.pendingApprovals.some((p) => p.step === step), 30_000);
  await handle.executeUpdate(approveStep, { args: [{ step, approver: 'bob' }] });
  await handle.executeUpdate(approveStep, { args: [{ step, approver: 'carol' }] });
}


function input(excluded: string[], exposedAt = Date.now() - 3_600_000): IncidentInput {
  return {
    category: 'key_compromise',
    summary: 'secret key pasted in a public gist',
    ...people,
    timeouts: fast,
    exposedAt: new Date(exposedAt).toISOString(),
    excludeUserIds: excluded,
  };
}

describe('key_compromise rotates the key, proves the old one dead, then revokes on the new key', () => {
  it('Dashboard path: a raw key is refused, an invalid key is not pushed, a key still accepted is not retired; revocation runs on the new key', async () => {
    const sandbox = await startSandbox({ users: 30, seed: 'rotation-dashboard' });
    const dir = mkdtempSync(join(tmpdir(), 'rotation-'));
    try {
      const setup = rotationSetup(sandbox, join(dir, 'worker-key'));
      const oldKey = sandbox.secretKey;
      const oldId = sandbox.admin.listKeys()[0]!.id;
      const users = [...new Set(activeSessions(sandbox).values())];
      const breakGlass = users[0]!;
      const taskQueue = uniqueTaskQueue('rotation');
      const worker = await testWorker(temporal.nativeConnection, taskQueue, rotationDeps(setup));
      await worker.runUntil(async () => {
        const handle = await temporal.client.workflow.start(incidentWorkflow, { taskQueue, workflowId: uniqueWorkflowId('rotation'), args: [input([breakGlass], Date.now() - 1000)] });
        await approveBoth(handle, 'rotate_secret_key');
        // Whoever holds the leaked key signs up three users meanwhile: the exposure audit must find them.
        const intruders = sandbox.admin.createUsers({ count: 3 }).map((u) => u.id);
        await waitForState(handle, getIncidentState, waitingFor('a new key'), 30_000);

        // A raw key is refused before it reaches history; so is a person not on the incident.
        expect(await refusal(handle.executeUpdate(provideNewKey, { args: [{ ref: oldKey, providedBy: 'bob' }] }))).toMatch(/update\.ref: this looks like a raw secret key; send a reference/);
        expect(await refusal(handle.executeUpdate(provideNewKey, { args: [{ ref: 'file:/x', providedBy: 'mallory' }] }))).toMatch(/update\.providedBy: mallory/);

        // A key Clerk does not know: the step fails, nothing is pushed, a new reference is asked for.
        const bogus = join(dir, 'bogus');
        sandbox.admin.addKey({ file: bogus });
        sandbox.admin.deleteKey(sandbox.admin.listKeys().at(-1)!.id);
        await handle.executeUpdate(provideNewKey, { args: [{ ref: `file:${bogus}`, providedBy: 'bob' }] });
        await waitForState(handle, getIncidentState, (s) => said(s, 'verify_new_key', /refused by the Backend API: 401 clerk_key_invalid.*nothing was pushed/) && s.waitingFor.includes('a new key'), 30_000);
        expect(sandbox.vercel && sandbox.admin.vercel.entries().filter((e) => e.action === 'env.upsert')).toEqual([]);

        // The operator's new key (Dashboard: add a key; stored in a file).
        const newFile = join(dir, 'new-key');
        const created = sandbox.admin.addKey({ file: newFile, label: 'rotation' });
        await handle.executeUpdate(provideNewKey, { args: [{ ref: `file:${newFile}`, providedBy: 'bob', note: 'added in the Dashboard' }] });
        await waitForState(handle, getIncidentState, waitingFor('deletion of the old key'), 60_000);

        // Pushed and deployed: the app runs on the new key, the worker's file now holds it.
        expect(sandbox.admin.vercel.productionEnv().CLERK_SECRET_KEY).toBe(created.secretKey);
        expect(readFileSync(setup.keyFile, 'utf8').trim()).toBe(created.secretKey);
        expect(readFileSync(`${setup.keyFile}.retired`, 'utf8').trim()).toBe(oldKey);

        // "Deleted", but it is not: the step does not pass, says so and asks again.
        await handle.executeUpdate(confirmOldKeyDeleted, { args: [{ confirmedBy: 'bob' }] });
        const stillAccepted = new RegExp(`key ${fingerprint(oldKey)} is still accepted \\(200\\).*the step does not pass`);
        await waitForState(handle, getIncidentState, (s) => said(s, 'retire_old_key', stillAccepted) && s.waitingFor.includes('deletion of the old key'), 30_000);

        sandbox.admin.deleteKey(oldId);
        await handle.executeUpdate(confirmOldKeyDeleted, { args: [{ confirmedBy: 'carol', note: 'deleted in the Dashboard' }] });
        await approveBoth(handle, 'revoke_all_sessions');
        const final = await handle.result();

        const o = outcomes(final);
        expect(o).toMatchObject({ verify_new_key: 'succeeded', push_new_key: 'succeeded', retire_old_key: 'succeeded', exposure_audit: 'succeeded', rotate_secret_key: 'succeeded', revoke_all_sessions: 'succeeded' });
        expect(final.status).toBe('resolved');
        // The old key is dead by the sandbox's own records: a request with it after deletion got 401.
        const withOld = sandbox.admin.auditEntries({ keyId: oldId });
        expect(withOld.some((e) => e.keyState === 'deleted' && e.status === 401)).toBe(true);
        expect(withOld.filter((e) => e.keyState === 'deleted' && e.status !== 401)).toEqual([]);
        // Every revoke was sent with the new key; the break-glass user keeps their sessions.
        const revokes = sandbox.admin.auditEntries({ route: 'POST /v1/sessions/{session_id}/revoke' });
        expect(revokes.length).toBeGreaterThan(0);
        expect(new Set(revokes.map((e) => e.keyId))).toEqual(new Set([created.id]));
        const left = activeSessions(sandbox);
        expect(left.size).toBeGreaterThan(0);
        expect(new Set(left.values())).toEqual(new Set([breakGlass]));
        // The exposure audit is in the timeline; keys are named by fingerprint only.
        expect(lastNote(final, 'exposure_audit')).toMatch(/window: 3 user\(s\) created \(user_.*\), 3 session\(s\) created/);
        const audit = [...final.timeline].reverse().find((e) => e.step === 'exposure_audit' && e.details?.audit)?.details?.audit as { usersCreatedIds: string[]; usersCreated: number; sessionsCreated: number; complete: boolean };
        expect(audit).toMatchObject({ usersCreated: 3, sessionsCreated: 3, complete: true });
        expect([...audit.usersCreatedIds].sort()).toEqual([...intruders].sort());
        const review = await handle.query(getReview);
        expect(review?.review.impact.keyExposure).toMatch(/^succeeded: .*window: \d+ user\(s\) created/);
        expect(review?.markdown).toContain('key exposure audit: succeeded');
        expect(lastNote(final, 'rotate_secret_key')).toBe(`key ${fingerprint(oldKey)} replaced by ${fingerprint(created.secretKey)} and proven dead`);
        expect(JSON.stringify(final)).not.toContain(oldKey);
        expect(JSON.stringify(final)).not.toContain(created.secretKey);
        expect(findSecrets(await handle.fetchHistory(), [oldKey, created.secretKey])).toEqual([]);
        // The dead key's copy is gone from disk.
        expect(existsSync(`${setup.keyFile}.retired`)).toBe(false);
      });
    } finally {
      await sandbox.close();
    }
  }, 120_000);

  it('Platform API path (as npm start wires sandbox mode): the runbook makes the key, stores it in Vault, and the old key expires', async () => {
    const sandbox = await startSandbox({ users: 20, seed: 'rotation-platform' });
    const dir = mkdtempSync(join(tmpdir(), 'rotation-'));
    try {
      const setup = rotationSetup(sandbox, join(dir, 'worker-key'), true);
      const oldKey = sandbox.secretKey;
      // The worker's keys exactly as src/main.ts builds them in sandbox mode.
      const keys = await workerKeysFromEnv(loadEnv({}), { apiUrl: sandbox.url, sandbox: { keyFile: setup.keyFile, secretKey: sandbox.secretKey, vault: sandbox.vault, platform: sandbox.platform } });
      const deps = { ...rotationDeps(setup), clerk: createClerkGateway({ secretKey: keys.secretKey, keySource: keys.keySource, apiUrl: sandbox.url }), keys: keys.rotation };
      const taskQueue = uniqueTaskQueue('rotation');
      const worker = await testWorker(temporal.nativeConnection, taskQueue, deps);
      await worker.runUntil(async () => {
        const handle = await temporal.client.workflow.start(incidentWorkflow, { taskQueue, workflowId: uniqueWorkflowId('rotation'), args: [input([])] });
        await approveBoth(handle, 'rotate_secret_key');
        await approveBoth(handle, 'revoke_all_sessions');
        const final = await handle.result();
        expect(outcomes(final)).toMatchObject({ new_key: 'succeeded', verify_new_key: 'succeeded', push_new_key: 'succeeded', retire_old_key: 'succeeded', rotate_secret_key: 'succeeded', revoke_all_sessions: 'succeeded' });
        const rotations = sandbox.admin.platform.rotations;
        expect(rotations).toHaveLength(1);
        const keys = sandbox.admin.listKeys();
        expect(keys.find((k) => k.id === rotations[0]!.expiring[0]!.id)?.deletedAt).not.toBeNull();
        const newKey = sandbox.admin.vault.read('secret', 'clerk')?.data.next_secret_key as string;
        expect(sandbox.admin.keys.lookup(`Bearer ${newKey}`)).toEqual({ state: 'active', id: rotations[0]!.newKeyId });
        expect(sandbox.admin.vercel.productionEnv().CLERK_SECRET_KEY).toBe(newKey);
        expect(readFileSync(setup.keyFile, 'utf8').trim()).toBe(newKey);
        expect(activeSessions(sandbox).size).toBe(0);
        expect(findSecrets(await handle.fetchHistory(), [oldKey, newKey])).toEqual([]);
      });
    } finally {
      await sandbox.close();
    }
  }, 120_000);

  it('Platform API path cancelled mid-rotation: the worker\'s key file ends on a live key; a worker left on a deleted key gets an attention item at triage', async () => {
    const sandbox = await startSandbox({ users: 5, seed: 'rotation-cancelled' });
    const dir = mkdtempSync(join(tmpdir(), 'rotation-'));
    try {
      const setup = rotationSetup(sandbox, join(dir, 'worker-key'), true);
      const oldKey = sandbox.secretKey;
      const deps = rotationDeps(setup);
      const taskQueue = uniqueTaskQueue('rotation-cancel');
      const worker = await testWorker(temporal.nativeConnection, taskQueue, deps);
      // A slow build holds the rotation between the Platform API's new key (old key expiring at once) and the worker's swap.
      sandbox.admin.vercel.buildMs = 120_000;
      await worker.runUntil(async () => {
        const handle = await temporal.client.workflow.start(incidentWorkflow, { taskQueue, workflowId: uniqueWorkflowId('rotation'), args: [input([])] });
        await approveBoth(handle, 'rotate_secret_key');
        await waitForState(handle, getIncidentState, (s) => outcomes(s).verify_new_key === 'succeeded' && s.waitingFor.includes('push_new_key'), 60_000);
        await handle.cancel();
        const final = await waitForState(handle, getIncidentState, (s) => s.status === 'cancelled', 60_000);
        expect(final.steps.find((x) => x.step === 'promote_worker_key')?.outcome).toBe('compensated');
        // Judged by the sandbox's key ring: the old key is deleted, the key in the worker's file is live.
        expect(sandbox.admin.keys.lookup(`Bearer ${oldKey}`).state).not.toBe('active');
        const inFile = readFileSync(setup.keyFile, 'utf8').trim();
        expect(inFile).not.toBe(oldKey);
        expect(sandbox.admin.keys.lookup(`Bearer ${inFile}`)).toEqual({ state: 'active', id: sandbox.admin.platform.rotations[0]!.newKeyId });
        await handle.result().catch(() => undefined);
      });

      // A worker whose key file still holds the deleted key: the next incident's triage says so.
      sandbox.admin.vercel.buildMs = 300;
      const stale = rotationSetup(sandbox, join(dir, 'stale-key'), true);
      writeFileSync(stale.keyFile, `${oldKey}\n`);
      const staleQueue = uniqueTaskQueue('rotation-stale');
      const staleWorker = await testWorker(temporal.nativeConnection, staleQueue, rotationDeps({ ...stale, initialKey: oldKey }));
      await staleWorker.runUntil(async () => {
        const handle = await temporal.client.workflow.start(incidentWorkflow, { taskQueue: staleQueue, workflowId: uniqueWorkflowId('stale-key'), args: [{ category: 'middleware_failure', reporter: 'alice', approvers: ['bob'], summary: 'dashboard answers 500', timeouts: fast }] });
        const state = await waitForState(handle, getIncidentState, (s) => s.attention.some((a) => a.includes("the worker's own Clerk secret key is invalid")), 60_000);
        expect(state.attention.find((a) => a.includes('secret key is invalid'))).toMatch(/^the worker's own Clerk secret key is invalid \(the Backend API answered 401 clerk_key_invalid\): point its CLERK_SECRET_KEY_REF at a live key/);
        await handle.cancel();
        await handle.result().catch(() => undefined);
      });
    } finally {
      await sandbox.close();
    }
  }, 180_000);

  it('Platform API path cancelled while Clerk rotates: the call is not abandoned, the worker still takes the new key', async () => {
    const sandbox = await startSandbox({ users: 5, seed: 'rotation-cancelled-in-call' });
    const dir = mkdtempSync(join(tmpdir(), 'rotation-'));
    try {
      const setup = rotationSetup(sandbox, join(dir, 'worker-key'), true);
      const oldKey = sandbox.secretKey;
      const taskQueue = uniqueTaskQueue('rotation-cancel-call');
      const worker = await testWorker(temporal.nativeConnection, taskQueue, rotationDeps(setup));
      // Clerk takes 4 s to rotate: the cancel lands while the Platform API call is in flight.
      sandbox.admin.setFaults({ routes: { 'POST /v1/platform/applications/{app}/instances/{env}/rotate_secret_keys': { latency: { fixedMs: 4000 } } } });
      await worker.runUntil(async () => {
        const handle = await temporal.client.workflow.start(incidentWorkflow, { taskQueue, workflowId: uniqueWorkflowId('rotation-in-call'), args: [input([])] });
        await approveBoth(handle, 'rotate_secret_key');
        await waitForState(handle, getIncidentState, (s) => s.waitingFor.includes('rotate_secret_keys'), 30_000);
        await handle.cancel();
        const final = await waitForState(handle, getIncidentState, (s) => s.status === 'cancelled', 60_000);
        expect(sandbox.admin.platform.rotations).toHaveLength(1);
        expect(final.steps.find((x) => x.step === 'promote_worker_key')?.outcome).toBe('compensated');
        // Judged by the sandbox's key ring: the worker's file holds the key the rotation made, and it is live.
        const inFile = readFileSync(setup.keyFile, 'utf8').trim();
        expect(inFile).not.toBe(oldKey);
        expect(sandbox.admin.keys.lookup(`Bearer ${inFile}`)).toEqual({ state: 'active', id: sandbox.admin.platform.rotations[0]!.newKeyId });
        await handle.result().catch(() => undefined);
      });
    } finally {
      await sandbox.close();
    }
  }, 120_000);

  it('a worker killed between push and retire: a new worker resumes at the retirement, nothing is pushed twice', async () => {
    const sandbox = await startSandbox({ users: 10, seed: 'rotation-kill' });
    const dir = mkdtempSync(join(tmpdir(), 'rotation-'));
    const taskQueue = uniqueTaskQueue('rotation-kill');
    const setup = rotationSetup(sandbox, join(dir, 'worker-key'));
    const oldId = sandbox.admin.listKeys()[0]!.id;
    const child = await startRotationWorker({ temporalAddress: inject('temporalAddress'), taskQueue, workflowBundlePath: inject('workflowBundlePath'), setup });
    try {
      const handle = await temporal.client.workflow.start(incidentWorkflow, { taskQueue, workflowId: uniqueWorkflowId('rotation-kill'), args: [input([])] });
      await approveBoth(handle, 'rotate_secret_key');
      await waitForState(handle, getIncidentState, waitingFor('a new key'), 30_000);
      const newFile = join(dir, 'new-key');
      const created = sandbox.admin.addKey({ file: newFile });
      await handle.executeUpdate(provideNewKey, { args: [{ ref: `file:${newFile}`, providedBy: 'bob' }] });
      await waitForState(handle, getIncidentState, waitingFor('deletion of the old key'), 60_000);
      child.kill('SIGKILL');
      expect(await child.exited).toBe(null);

      sandbox.admin.deleteKey(oldId);
      const replacement = await testWorker(temporal.nativeConnection, taskQueue, rotationDeps({ ...setup, initialKey: created.secretKey }), 'replacement');
      await replacement.runUntil(async () => {
        await handle.executeUpdate(confirmOldKeyDeleted, { args: [{ confirmedBy: 'carol' }] });
        await approveBoth(handle, 'revoke_all_sessions');
        const final = await handle.result();
        expect(outcomes(final)).toMatchObject({ push_new_key: 'succeeded', retire_old_key: 'succeeded', rotate_secret_key: 'succeeded', revoke_all_sessions: 'succeeded' });
      });
      const log = sandbox.admin.vercel.entries();
      expect(log.filter((e) => e.action === 'env.upsert')).toHaveLength(1);
      expect(log.filter((e) => e.action === 'deployment.create')).toHaveLength(1);
      expect(activeSessions(sandbox).size).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await child.exited;
      await sandbox.close();
    }
  }, 120_000);
});

describe('the Platform API rotation retried after a worker died past it', () => {
  it('a retry finds the key its first attempt stored and rotates nothing more', async () => {
    const sandbox = await startSandbox({ users: 5, seed: 'rotation-retry' });
    const dir = mkdtempSync(join(tmpdir(), 'rotation-retry-'));
    try {
      const keys = await workerKeysFromEnv(loadEnv({}), { apiUrl: sandbox.url, sandbox: { keyFile: join(dir, 'worker-key'), secretKey: sandbox.secretKey, vault: sandbox.vault, platform: sandbox.platform } });
      const acts = createKeyRotationActivities(() => keys.rotation, { clerk: () => undefined, deploy: () => undefined });
      const first = (await new MockActivityEnvironment({ attempt: 1 }).run(() => acts.platformRotateKey())) as { fingerprint: string };
      expect(sandbox.admin.platform.rotations).toHaveLength(1);
      // The worker died after Clerk answered and the key was stored: Temporal runs attempt 2.
      const retried = (await new MockActivityEnvironment({ attempt: 2 }).run(() => acts.platformRotateKey())) as { fingerprint: string };
      expect(retried.fingerprint).toBe(first.fingerprint);
      expect(sandbox.admin.platform.rotations).toHaveLength(1);
    } finally {
      await sandbox.close();
    }
  });
});
