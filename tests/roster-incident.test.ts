/**
 * The roster in the incident (issue 30), on the run's real dev server with a worker that has a
 * roster: the README's alias attack refused at start and at approval; one person under two
 * spellings counts once; the requester never approves their own critical step; a signed policy
 * covers every state-changing update (unsigned refused naming `signature`, signed accepted, a
 * signature spent once); our CLI's cancel checked by the policy; a gate nobody answers pages the
 * primary, then the secondary, then the escalation target, judged by the emulated PagerDuty's log;
 * the decision acknowledges and the end resolves every alert; the review names the roster person,
 * the key and the client identity.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import type { ActivityDeps } from '../src/activities';
import { pagingFromEnv } from '../src/activities/paging';
import { rosterRoutingKeys } from '../src/activities/roster';
import { loadEnv } from '../src/config';
import type { IncidentInput } from '../src/domain';
import { parseRoster } from '../src/roster/parse';
import { actionText } from '../src/roster/policy';
import { onCallAt } from '../src/roster/rotation';
import type { Roster } from '../src/roster/schema';
import { decisionStatement, SIGNATURE_NAMESPACE } from '../src/signing/sshsig';
import { POLICY_ACTIONS, type PolicyStep } from '../src/roster/schema';
import { actingPerson } from '../src/workflows/incident-roster';
import { recordedRoster } from '../src/activities/roster';
import { approveStep, getIncidentState, getReview, incidentWorkflow, requestCancel, requestStep, type IncidentState } from '../src/workflows/incident';
import { startChatReceiver, type ChatReceiver } from './helpers/chat-receiver';
import { runCli } from './helpers/cli';
import { sandboxDeps, waitForState, withIncidents } from './helpers/incident';
import { refusal } from './helpers/refusal';
import { createTemporalIncidentOpener } from '../src/intake/temporal-opener';
import { keyDir } from './helpers/ssh-keys';
import { connectTemporal, testWorker, uniqueTaskQueue, type TemporalTestContext } from './helpers/temporal';

const SAMPLE = readFileSync(join(__dirname, '..', 'config', 'roster.sample.yaml'), 'utf8');
const sample = parseRoster({ file: 'roster.sample.yaml', text: SAMPLE });

const keys = keyDir();
const bob = keys.key('roster-bob');
const carol = keys.key('roster-carol');
const alice = keys.key('roster-alice');
/** The sample with the test's own keys for alice, bob and carol, and every rule signed. */
function signedRoster(): Roster {
  const text = SAMPLE.replace(/ssh-ed25519 \S+ alice@example.com \(sample\)/, `${alice.publicLine} alice`)
    .replace(/ssh-ed25519 \S+ bob@example.com \(sample\)/, `${bob.publicLine} bob`)
    .replace(/ssh-ed25519 \S+ carol@example.com \(sample\)/, `${carol.publicLine} carol`)
    .replaceAll('signed: false # production: true', 'signed: true');
  return parseRoster({ file: 'roster.signed.yaml', text });
}

let temporal: TemporalTestContext;
let sandbox: RunningSandbox;
let chat: ChatReceiver;
beforeAll(async () => {
  temporal = await connectTemporal();
  sandbox = await startSandbox({ users: 10, seed: 'roster-incident-test' });
  // The emulated PagerDuty knows the roster's services, as a real account would.
  sandbox.admin.pagerduty.settings({ routingKeys: [...sandbox.pagerduty.routingKeys, ...rosterRoutingKeys(sample)] });
  chat = await startChatReceiver();
});
afterAll(async () => {
  await chat?.close();
  await sandbox?.close();
  await temporal?.close();
  keys.close();
});

type Handle = WorkflowHandle<typeof incidentWorkflow>;
const slow = { escalateAfter: '3m', decideWithin: '5m', probe: '2s' };
const outage = (extra: Partial<IncidentInput> = {}): IncidentInput => ({
  category: 'clerk_outage',
  reporter: 'alice@example.com',
  summary: 'Users cannot sign in: Clerk API returns 503',
  approvers: ['@auth-oncall'],
  timeouts: slow,
  ...extra,
});

async function withWorker<T>(roster: Roster, body: (start: (input: IncidentInput, id?: string) => Promise<Handle>, taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = uniqueTaskQueue('roster');
  const holder = { current: () => roster };
  const paging = pagingFromEnv(loadEnv({}), { sandbox: sandbox.pagerduty, roster: holder });
  const deps: ActivityDeps = { ...sandboxDeps(sandbox, chat.url), roster: holder, ...(paging ? { paging } : {}) };
  const worker = await testWorker(temporal.nativeConnection, taskQueue, deps);
  return withIncidents(temporal.client, worker, taskQueue, (start) => body(start, taskQueue), { idPrefix: 'roster' });
}

const gateOpen = (step: string) => (s: IncidentState) => s.pendingApprovals.some((p) => p.step === step);

async function failure(handle: Handle): Promise<string> {
  const err = await handle.result().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return (err as WorkflowFailedError).cause?.message ?? '';
}

describe('names in the input', () => {
  it("the README's alias attack (alice@ reports, alice2@ and alice3@ approve) is refused at start, the field named", async () => {
    await withWorker(sample, async (start) => {
      const h = await start(outage({ reporter: 'alice@', approvers: ['alice2@', 'alice3@'] }));
      const message = await failure(h);
      expect(message).toMatch(/^input\.approvers\[0\]: .*alice2@/);
      expect(message).toContain('input.approvers[1]');
    });
  });

  it('a reporter the roster does not know is refused; a role that is no rotation is refused; a monitor may report', async () => {
    await withWorker(sample, async (start) => {
      expect(await failure(await start(outage({ reporter: 'mallory@example.com' })))).toMatch(/^input\.reporter: /);
      expect(await failure(await start(outage({ approvers: ['@payments'] })))).toMatch(/^input\.approvers\[0\]: .*neither a rotation/);
      const h = await start(outage({ reporter: 'monitor:alertmanager' }));
      const s = await waitForState(h, getIncidentState, gateOpen('emergency_bypass'), 30_000);
      expect(s.roster?.roster.version).toBe(sample.version);
    });
  });

  it('the CLI refuses the same names before starting, naming the flag (ROSTER_FILE set)', async () => {
    const file = join(__dirname, '..', 'config', 'roster.sample.yaml');
    const env: NodeJS.ProcessEnv = { ...process.env, ROSTER_FILE: file, TEMPORAL_ADDRESS: inject('temporalAddress') };
    delete env.TEMPORAL_NAMESPACE;
    const r = await runCli('src/cli/incident.ts', ['start', '--category', 'clerk_outage', '--reporter', 'alice@', '--approver', 'alice2@', '--approver', 'alice3@', '--summary', 'x'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--approver "alice2@"');
  });
});

describe('approvals by the roster', () => {
  it('one person under two spellings counts once, the requester never approves her critical step, the history keeps roster ids', async () => {
    await withWorker(sample, async (start) => {
      const h = await start(outage());
      await waitForState(h, getIncidentState, gateOpen('emergency_bypass'), 30_000);
      const own = await refusal(h.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'Alice (on-call)' }] }));
      expect(own).toMatch(/^update\.approver: alice requested emergency_bypass and cannot approve their own request/);
      await h.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'bob@example.com' }] });
      const twice = await refusal(h.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'BOBBY' }] }));
      expect(twice).toMatch(/bob already approved emergency_bypass/);
      const outsider = await refusal(h.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'dave@example.com' }] }));
      expect(outsider).toMatch(/^update\.approver: dave is not among this incident's approvers/);
      const decided = await h.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'carol+oncall@example.com' }] });
      expect(decided.decision).toBe('approved');
      expect(decided.approvedBy).toEqual(['bob', 'carol']);
      const s = await h.query(getIncidentState);
      expect(s.gates[0]?.approvals.map((a) => a.approver)).toEqual(['bob', 'carol']);
      expect(s.timeline.some((e) => e.actor === 'carol' && e.description.includes('sent as "carol+oncall@example.com"'))).toBe(true);
    });
  });
});

describe('a signed policy covers every update', () => {
  const roster = signedRoster();

  it.each(POLICY_ACTIONS)('%s unsigned is refused naming update.signature (the check every validator runs)', (action) => {
    const step: PolicyStep = action === 'resolve' || action === 'cancel' ? 'incident' : action === 'extend' ? 'emergency_bypass' : action === 'provide_key' || action === 'confirm_deletion' ? 'rotate_secret_key' : action === 'request' ? 'targeted_revocation' : 'operator_action';
    const state = {
      incidentId: 'incident-table', category: 'middleware_failure', severity: 'high', reporter: 'alice', approvers: ['@auth-oncall'],
      roster: { roster: recordedRoster(roster), nonce: 'n' },
    } as unknown as IncidentState;
    const gate = { step, requestedBy: 'alice', approvals: [], nonce: 'g' } as never;
    expect(() => actingPerson({ state }, { action, step, field: 'who', who: 'bob@example.com', text: '', ...(action === 'approve' || action === 'reject' ? { gate } : {}) })).toThrow(/^update\.signature: .* must be signed with one of bob's SSH keys/);
    // The same without a roster's signed rule: bob may.
    const open = { ...state, roster: { roster: recordedRoster(sample), nonce: 'n' } } as IncidentState;
    expect(actingPerson({ state: open }, { action, step, field: 'who', who: 'bob@example.com', text: '', ...(action === 'approve' || action === 'reject' ? { gate } : {}) }).person).toBe('bob');
  });

  it('unsigned approvals, requests and cancels are refused naming signature; signed ones are accepted once', async () => {
    await withWorker(roster, async (start) => {
      const h = await start(outage({ category: 'session_issues', approvers: ['@auth-oncall'] }));
      const s = await waitForState(h, getIncidentState, (x) => x.status === 'mitigating' && x.timeline.some((e) => e.description.includes('optional request')) || x.waitingFor.includes('optional request'), 60_000);
      const { runId } = await h.describe();
      const nonce = s.roster?.nonce as string;
      const req = { step: 'targeted_revocation' as const, requester: 'bob@example.com', userIds: ['user_2abcdefghijklmnopqrstuvwxyz'] };
      expect(await refusal(h.executeUpdate(requestStep, { args: [req] }))).toMatch(/^update\.signature: request targeted_revocation .* must be signed/);
      expect(await refusal(h.executeUpdate(requestCancel, { args: [{ cancelledBy: 'alice' }] }))).toMatch(/^update\.signature: /);
      // Signed by carol's key but sent as bob: not bob's key.
      const text = actionText(req);
      const statement = decisionStatement({ workflowId: h.workflowId, runId: runId as string, step: 'targeted_revocation', decision: 'request', reason: text, approver: req.requester, nonce });
      const wrongKey = keys.sign(carol.file, statement, SIGNATURE_NAMESPACE);
      expect(await refusal(h.executeUpdate(requestStep, { args: [{ ...req, signature: wrongKey, nonce }] }))).toMatch(/^update\.signature: the key .* is not one of bob's keys/);
      const signature = keys.sign(bob.file, statement, SIGNATURE_NAMESPACE);
      const answer = await h.executeUpdate(requestStep, { args: [{ ...req, signature, nonce }] });
      expect(answer.requestedBy).toBe('bob');
      const after = await h.query(getIncidentState);
      expect(after.roster?.nonce).not.toBe(nonce);
      expect(after.timeline.some((e) => e.actor === 'bob' && e.description.includes(`signed with key ${bob.fingerprint}`))).toBe(true);
    });
  });
});

describe('our CLI under a signed policy', () => {
  it('cancel needs --by and, signed, goes through; unsigned it is refused and nothing is cancelled', async () => {
    const roster = signedRoster();
    await withWorker(roster, async (start) => {
      const h = await start(outage());
      await waitForState(h, getIncidentState, gateOpen('emergency_bypass'), 30_000);
      const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress') };
      delete env.TEMPORAL_NAMESPACE;
      delete env.ROSTER_FILE;
      const cli = (args: string[]) => runCli('src/cli/incident.ts', args, env);
      const noBy = await cli(['cancel', h.workflowId, '--reason', 'false alarm']);
      expect(noBy.code).toBe(2);
      expect(noBy.firstError).toMatch(/--by: .* decides by the on-call roster/);
      const unsigned = await cli(['cancel', h.workflowId, '--by', 'alice', '--reason', 'false alarm']);
      expect(unsigned.code).toBe(1);
      expect(unsigned.firstError).toMatch(/refused: update\.signature: cancel incident .* must be signed with one of alice's SSH keys/);
      expect((await h.describe()).status.name).toBe('RUNNING');
      const signed = await cli(['cancel', h.workflowId, '--by', 'alice', '--reason', 'false alarm', '--sign', alice.file]);
      expect(signed.code, signed.stderr).toBe(0);
      expect(signed.stdout).toContain('cancellation by alice accepted');
      const final = await h.result().then(() => undefined, () => h.query(getIncidentState));
      expect(final?.status).toBe('cancelled');
      expect(final?.cancelRequest).toMatchObject({ by: 'alice', reason: 'false alarm', fingerprint: alice.fingerprint });
    });
  }, 120_000);
});

describe('paging', () => {
  it('a page PagerDuty keeps refusing is retried, then said and flagged; the incident goes on', async () => {
    await withWorker(sample, async (start) => {
      sandbox.admin.pagerduty.reset();
      sandbox.admin.pagerduty.settings({ failNext: { status: 503, count: 20 } });
      try {
        const h = await start(outage({ category: 'middleware_failure' }));
        await waitForState(h, getIncidentState, gateOpen('operator_action'), 30_000);
        const s = await waitForState(h, getIncidentState, (x) => (x.pages ?? []).some((p) => p.outcome === 'failed'), 60_000);
        expect(s.attention.some((a) => /paging .* for operator_action failed .*reach them another way/.test(a))).toBe(true);
        // Still waiting for its decision, and takes it.
        const d = await h.executeUpdate(approveStep, { args: [{ step: 'operator_action', approver: 'bob' }] });
        expect(d.decision).toBe('approved');
        const failed = sandbox.admin.pagerduty.overview().log.filter((e) => e.outcome === 'failed' && e.eventAction === 'trigger');
        expect(failed.length).toBeGreaterThanOrEqual(4);
      } finally {
        sandbox.admin.pagerduty.settings({ failNext: null });
      }
    });
  }, 120_000);

  it('a gate nobody answers pages the primary, then the secondary, then the escalation target (never the requester); the end resolves every alert', async () => {
    await withWorker(sample, async (start) => {
      sandbox.admin.pagerduty.reset();
      const h = await start(outage({ timeouts: { escalateAfter: '4s', decideWithin: '24s', probe: '2s' } }));
      const onCall = onCallAt(sample, 'auth-oncall', new Date());
      const final = await h.result();
      expect(final.gates[0]?.outcome).toBe('timed_out');
      const pd = sandbox.admin.pagerduty.overview();
      const keyOf = (id: string) => sample.people.find((p) => p.id === id)?.paging?.pagerduty.routingKey;
      const triggers = pd.log.filter((e) => e.eventAction === 'trigger' && e.outcome === 'accepted' && e.dedupKey?.includes('emergency_bypass'));
      // The requester (alice reports) is left out: she cannot decide her own step.
      const order = [...new Set([onCall.primary.id, onCall.secondary?.id, onCall.escalation?.id].filter((p): p is string => p !== undefined && p !== 'alice'))];
      expect(triggers.map((e) => e.routingKey)).toEqual(order.map(keyOf));
      expect(triggers[1]?.summary).toMatch(/^ESCALATED: /);
      // Every alert the incident opened is resolved at its end.
      const opened = pd.alerts.filter((a) => a.dedupKey === triggers[0]?.dedupKey);
      expect(opened.length).toBe(order.length);
      expect(opened.every((a) => a.status === 'resolved')).toBe(true);
      expect(final.pages?.filter((p) => p.action === 'trigger').map((p) => [p.level, p.person])).toEqual(order.map((id, i) => [['primary', 'secondary', 'escalation'][i], id]));
    });
  }, 90_000);

  it('an incident opened by detection (reporter monitor:<source>, approvers @auth-oncall) starts and pages the on-call; the monitor approves nothing', async () => {
    await withWorker(sample, async (_start, taskQueue) => {
      sandbox.admin.pagerduty.reset();
      const deployment = taskQueue.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 60);
      const opener = createTemporalIncidentOpener({ client: temporal.client, taskQueue, deployment, approvers: ['@auth-oncall'], categories: ['middleware_failure'] });
      const opened = await opener.openOrJoin({ category: 'middleware_failure', severity: 'high', dedupKey: 'g|middleware_failure', detectedBy: 'alert:pager', startsAt: new Date(Date.now() - 30_000).toISOString(), evidence: ['firing AuthMiddleware5xx [f1]'] });
      const h = temporal.client.workflow.getHandle<typeof incidentWorkflow>(opened.incidentId);
      const s = await waitForState(h, getIncidentState, (x) => gateOpen('operator_action')(x) && (x.pages ?? []).some((p) => p.action === 'trigger' && p.outcome === 'delivered'), 30_000);
      expect(s.reporter).toBe('monitor:alert:pager');
      expect(s.detection).toMatchObject({ detectedBy: 'alert:pager' });
      expect(s.pages?.find((p) => p.action === 'trigger')).toMatchObject({ level: 'primary' });
      const refused = await refusal(h.executeUpdate(approveStep, { args: [{ step: 'operator_action', approver: 'monitor:alert:pager' }] }));
      expect(refused).toMatch(/^update\.approver: /);
      await h.terminate('test over');
    });
  }, 90_000);

  it('a decision acknowledges the alert; the history carries no routing key', async () => {
    await withWorker(sample, async (start) => {
      sandbox.admin.pagerduty.reset();
      const h = await start(outage({ category: 'middleware_failure', approvers: ['@auth-oncall'] }));
      await waitForState(h, getIncidentState, gateOpen('operator_action'), 30_000);
      await waitForState(h, getIncidentState, (s) => (s.pages ?? []).some((p) => p.action === 'trigger' && p.outcome === 'delivered'), 15_000);
      await h.executeUpdate(approveStep, { args: [{ step: 'operator_action', approver: 'bob' }] });
      await waitForState(h, getIncidentState, (s) => (s.pages ?? []).some((p) => p.action === 'acknowledge'), 15_000);
      const pd = sandbox.admin.pagerduty.overview();
      expect(pd.log.some((e) => e.eventAction === 'acknowledge' && e.outcome === 'accepted')).toBe(true);
      const history = JSON.stringify(await h.fetchHistory());
      for (const key of rosterRoutingKeys(sample)) expect(history).not.toContain(key);
    });
  }, 90_000);
});

describe('the review', () => {
  it('shows the roster person, the key and the client identity of each decision, and flags two people deciding from one client (review and chat)', async () => {
    await withWorker(sample, async (start) => {
      const h = await start(outage());
      await waitForState(h, getIncidentState, gateOpen('emergency_bypass'), 30_000);
      // Both from this test's one client: the policy cannot see it, the history can.
      await h.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'bobby' }] });
      await h.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'carol@example.com' }] });
      await h.cancel();
      await h.result().catch(() => undefined);
      const review = await h.query(getReview);
      const rows = review?.review.whoDecided.filter((d) => d.update === 'approveStep') ?? [];
      expect(rows.map((d) => [d.named, d.person, d.identity])).toEqual([
        ['bobby', 'bob', temporal.client.options.identity],
        ['carol@example.com', 'carol', temporal.client.options.identity],
      ]);
      expect(rows[1]?.sharedIdentity).toBe(`carol and bob decided emergency_bypass from the same client identity ${temporal.client.options.identity}`);
      expect(review?.markdown).toContain('| roster person | key | client identity |');
      expect(review?.markdown).toContain('**Shared client identities**');
      const texts = chat.texts().filter((t) => t.includes(h.workflowId) || t.includes('SHARED CLIENT IDENTITY'));
      expect(texts.some((t) => t.includes('SHARED CLIENT IDENTITY') && t.includes('carol and bob decided emergency_bypass'))).toBe(true);
    });
  }, 90_000);
});
