/**
 * Secrets never leave their store (docs/key-rotation.md, "What a reference may name"), on the
 * run's real dev server and the sandbox over HTTP: a key_compromise incident is sent key
 * references that try to reach the worker's own secrets (its environment, other files, Vault
 * paths) and free text that carries secrets. Judged by the records: the whole workflow history,
 * the chat capture, the review, the sandbox's audit log of what Clerk received (no unknown bearer,
 * no request with a key the incident was not allowed to use) and the emulated Vercel's env.
 */
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { createKeyResolver, fingerprint } from '../src/keys/resolve';
import { approveStep, confirmOldKeyDeleted, getIncidentState, getReview, incidentWorkflow, provideNewKey, type IncidentState } from '../src/workflows/incident';
import { startChatReceiver } from './helpers/chat-receiver';
import { findSecrets, historyText } from './helpers/history-scan';
import { waitForState } from './helpers/incident';
import { refusal } from './helpers/refusal';
import { rotationDeps, rotationSetup } from './helpers/rotation';
import { SECRET_SAMPLES } from './helpers/secret-shapes';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
beforeAll(async () => {
  temporal = await connectTemporal();
});
afterAll(async () => {
  await temporal?.close();
});

const people = { reporter: 'alice', approvers: ['alice', 'bob', 'carol'] };
const fast = { escalateAfter: '40s', decideWithin: '90s', probe: '2s' };
const refusedVerifications = (s: IncidentState) => s.timeline.filter((e) => e.step === 'verify_new_key' && /nothing was pushed/.test(e.description)).length;

/** The values of the environment's secret-named variables (paths such as PWD legitimately appear in the history). */
const secretNamedValues = (environ: string) =>
  environ
    .split('\n')
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const)
    .filter(([name, value]) => /KEY|TOKEN|SECRET|PASSWORD/.test(name) && value.length >= 12 && !value.startsWith('/'))
    .map(([, value]) => value);

async function approveBoth(handle: WorkflowHandle, step: 'rotate_secret_key' | 'revoke_all_sessions'): Promise<void> {
  await waitForState(handle, getIncidentState, (s) => s.pendingApprovals.some((p) => p.step === step), 30_000);
  await handle.executeUpdate(approveStep, { args: [{ step, approver: 'bob' }] });
  await handle.executeUpdate(approveStep, { args: [{ step, approver: 'carol' }] });
}

describe('key references reach only what the worker allows; nothing that quotes a value leaves', () => {
  it('the worker environment, escapes, symlinks, its own secrets and look-alike values: refused by syntax or at resolve time, by the records', async () => {
    const sandbox = await startSandbox({ users: 10, seed: 'secret-handling' });
    const chat = await startChatReceiver();
    const dir = mkdtempSync(join(tmpdir(), 'secret-handling-'));
    const outside = mkdtempSync(join(tmpdir(), 'secret-outside-'));
    // The worker's own secrets, in its environment as a deployed worker has them.
    const secrets: Record<string, string> = {
      VERCEL_TOKEN: `vercel${'Tok'}${'9'.repeat(18)}Ab`,
      CLERK_SECRET_KEY: sandbox.secretKey,
      VAULT_TOKEN: sandbox.vault.token,
      CLERK_PLATFORM_API_TOKEN: `plat${'Tok'}${'7'.repeat(24)}`,
      CODEC_SERVER_TOKEN: `codec${'Tok'}${'5'.repeat(24)}`,
      PAYLOAD_KEY: `k1:${'QUJD'.repeat(10)}QUI=`,
      DEPLOY_WEBHOOK_SECRET: `hook${'Sec'}${'3'.repeat(32)}`,
    };
    const saved = Object.fromEntries(Object.keys(secrets).map((k) => [k, process.env[k]]));
    Object.assign(process.env, secrets);
    const environ = readFileSync('/proc/self/environ', 'utf8').split('\0').join('\n');
    process.env.CLERK_SECRET_KEY_NEXT_DUMP = environ;
    try {
      const setup = rotationSetup(sandbox, join(dir, 'worker-key'));
      const oldId = sandbox.admin.listKeys()[0]!.id;
      // Real keys of the instance, in places the incident may not name: using either would show in the audit log.
      const outsideKey = sandbox.admin.addKey({ file: join(outside, 'key'), label: 'outside' });
      const envKey = sandbox.admin.addKey({ label: 'env' });
      process.env.OTHER_CLERK_KEY = envKey.secretKey;
      // Inside the allowed directory: the environment copied, a symlink out, a symlink to /proc, a directory link.
      writeFileSync(join(dir, 'environ-copy'), environ);
      writeFileSync(join(dir, 'vercel-token'), `${secrets.VERCEL_TOKEN}\n`);
      symlinkSync(join(outside, 'key'), join(dir, 'link-out'));
      symlinkSync('/proc/self/environ', join(dir, 'link-environ'));
      mkdirSync(join(dir, 'sub'));
      symlinkSync(outside, join(dir, 'sub', 'up'));
      const vault = createKeyResolver({ vault: sandbox.vault });
      await vault.store('vault:secret/clerk/dump#value', environ);
      await vault.store('vault:secret/other#key', envKey.secretKey);

      const taskQueue = uniqueTaskQueue('secrets');
      const worker = await testWorker(temporal.nativeConnection, taskQueue, { ...rotationDeps(setup), chatWebhookUrl: chat.url, keyExposureLookbackMs: 3 * 86_400_000 });
      sandbox.admin.resetAudit();
      await worker.runUntil(async () => {
        // No exposedAt: the audit covers the configured lookback and says so.
        const handle = await temporal.client.workflow.start(incidentWorkflow, { taskQueue, workflowId: uniqueWorkflowId('secrets'), args: [{ category: 'key_compromise', summary: 'key in a public gist', ...people, timeouts: fast }] });
        await approveBoth(handle, 'rotate_secret_key');
        await waitForState(handle, getIncidentState, (s) => s.waitingFor.includes('a new key'), 30_000);

        // Refused by the update's validator (nothing reaches history), naming the field and the rule.
        const bySyntax: [string, RegExp][] = [
          ['file:/proc/self/environ', /update\.ref: a key file cannot be under \/proc/],
          ['file:/proc/1/environ', /update\.ref: a key file cannot be under \/proc/],
          ['file:/dev/stdin', /update\.ref: a key file cannot be under/],
          [`file:${dir}/../../etc/passwd`, /update\.ref: a file: path must be plain/],
          [`file:${dir}/./../${outside.split('/').pop()}/key`, /update\.ref: a file: path must be plain/],
          ['vault:secret/clerk/../other#key', /update\.ref: a vault: path must be plain/],
          ['vault:secret/clerk/%2e%2e/other#key', /update\.ref: a vault: reference must be plain: no "%"/],
          ['vault:secret/clerk%2F..%2Fother#key', /update\.ref: a vault: reference must be plain/],
          ...Object.keys(secrets).map((name): [string, RegExp] => [`env:${name}`, new RegExp(`update\\.ref: ${name} is one of the worker's own secrets`)]),
        ];
        for (const [ref, message] of bySyntax) expect(await refusal(handle.executeUpdate(provideNewKey, { args: [{ ref, providedBy: 'bob' }] })), ref).toMatch(message);
        // Free text that carries a secret is refused too.
        for (const [, text] of SECRET_SAMPLES.slice(0, 6)) {
          expect(await refusal(handle.executeUpdate(provideNewKey, { args: [{ ref: `file:${dir}/new-key`, providedBy: 'bob', note: text }] }))).toMatch(/update\.note: looks like .*never carries a secret/);
        }

        // Accepted as references, refused where they are resolved (the worker's allowlist and the value's shape).
        const atResolve: [string, RegExp][] = [
          [`file:${outside}/key`, /not inside a directory this worker allows for keys \(KEY_REF_ALLOWED_DIRS/],
          [`file:${dir}/link-out`, /not inside a directory this worker allows/],
          [`file:${dir}/link-environ`, /not inside a directory this worker allows/],
          [`file:${dir}/sub/up/key`, /not inside a directory this worker allows/],
          [`file:${dir}/environ-copy`, /does not hold a Clerk secret key .*nothing was sent anywhere/],
          [`file:${dir}/vercel-token`, /does not hold a Clerk secret key/],
          ['env:OTHER_CLERK_KEY', /OTHER_CLERK_KEY is not among the variables this worker allows for new keys \(KEY_REF_ALLOWED_ENV/],
          ['env:HOME', /HOME is not among the variables/],
          ['env:CLERK_SECRET_KEY_NEXT_DUMP', /does not hold a Clerk secret key/],
          ['vault:secret/other#key', /secret\/other is not under a Vault path this worker allows/],
          ['vault:secret/clerk/dump#value', /does not hold a Clerk secret key/],
        ];
        for (const [i, [ref, message]] of atResolve.entries()) {
          await handle.executeUpdate(provideNewKey, { args: [{ ref, providedBy: 'bob' }] });
          const s = await waitForState(handle, getIncidentState, (st) => refusedVerifications(st) === i + 1 && st.waitingFor.includes('a new key'), 30_000);
          expect(s.timeline.filter((e) => e.step === 'verify_new_key').at(-1)?.description, ref).toMatch(message);
        }

        // A key the worker allows: the rotation runs to the end.
        const created = sandbox.admin.addKey({ file: join(dir, 'new-key'), label: 'rotation' });
        await handle.executeUpdate(provideNewKey, { args: [{ ref: `file:${dir}/new-key`, providedBy: 'bob', note: 'added in the Dashboard' }] });
        await waitForState(handle, getIncidentState, (s) => s.waitingFor.includes('deletion of the old key'), 60_000);
        sandbox.admin.deleteKey(oldId);
        await handle.executeUpdate(confirmOldKeyDeleted, { args: [{ confirmedBy: 'carol' }] });
        await approveBoth(handle, 'revoke_all_sessions');
        const final = await handle.result();
        expect(Object.fromEntries(final.steps.map((x) => [x.step, x.outcome]))).toMatchObject({ verify_new_key: 'succeeded', push_new_key: 'succeeded', retire_old_key: 'succeeded', rotate_secret_key: 'succeeded', exposure_audit: 'succeeded' });
        const audit = final.steps.find((s) => s.step === 'exposure_audit');
        expect(audit?.note).toMatch(/^3d lookback \(no exposedAt given: KEY_EXPOSURE_LOOKBACK, not the exposure window\): /);
        const review = await handle.query(getReview);
        expect(review?.markdown).toMatch(/key exposure audit: succeeded: 3d lookback \(no exposedAt given/);

        // The records. Every value the worker holds, and every line of its environment.
        const values = [...Object.values(secrets), envKey.secretKey, outsideKey.secretKey, created.secretKey, ...secretNamedValues(environ)];
        const history = await handle.fetchHistory();
        expect(findSecrets(history, values)).toEqual([]);
        expect(historyText(history)).not.toMatch(/VERCEL_TOKEN=|PATH=\//);
        const chatText = chat.texts().join('\n');
        expect(chat.messages.length).toBeGreaterThan(0);
        for (const v of values) expect(chatText.includes(v), 'chat').toBe(false);
        expect(chatText).not.toMatch(/sk_(?:test|live)_[A-Za-z0-9]{8,}/);
        const reviewText = `${review?.markdown}\n${JSON.stringify(review?.review)}`;
        for (const v of values) expect(reviewText.includes(v), 'review').toBe(false);
        expect(JSON.stringify(final)).not.toMatch(/sk_(?:test|live)_[A-Za-z0-9]{8,}/);
        // What Clerk received: only the old key and the new one; no unknown bearer (a token, an environment), no key the incident could not name.
        const summary = sandbox.admin.auditSummary();
        expect(summary.requestsWithUnknownKey).toBe(0);
        expect(summary.requestsWithoutKey).toBe(0);
        expect(sandbox.admin.auditEntries({ keyId: envKey.id })).toEqual([]);
        expect(sandbox.admin.auditEntries({ keyId: outsideKey.id })).toEqual([]);
        expect(new Set(Object.keys(summary.byKey))).toEqual(new Set([oldId, created.id]));
        // The deployment got the new key and nothing else of the worker's.
        const deployed = sandbox.admin.vercel.productionEnv();
        expect(deployed.CLERK_SECRET_KEY).toBe(created.secretKey);
        for (const v of values.filter((x) => x !== created.secretKey)) expect(Object.values(deployed).includes(v)).toBe(false);
        expect(final.timeline.some((e) => e.details?.newKey === fingerprint(created.secretKey))).toBe(true);
      });
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      delete process.env.CLERK_SECRET_KEY_NEXT_DUMP;
      delete process.env.OTHER_CLERK_KEY;
      await chat.close();
      await sandbox.close();
    }
  }, 180_000);
});
