/**
 * Signed approvals (issue 22) end to end on the run's real dev server: the worker's approver
 * registry (an allowed_signers file of keys made by ssh-keygen), the nonce of each approval
 * request, and the update validator that refuses every forged, replayed or unsigned decision on a
 * step that needs a signature before it reaches history. Decisions signed through our CLI with a
 * key file and through an ssh-agent the test starts; `sign` for the UI; the registry changing
 * between incidents; the review naming each key; the signed history replaying.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ActivityDeps } from '../src/activities';
import { CRITICAL_STEPS, type IncidentInput } from '../src/domain';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { decisionStatement, SIGNATURE_NAMESPACE, type DecisionStatement } from '../src/signing/sshsig';
import { getIncidentState, getReview, incidentWorkflow, type IncidentState } from '../src/workflows/incident';
import { startChatReceiver, type ChatReceiver } from './helpers/chat-receiver';
import { runCli, type CliRun } from './helpers/cli';
import { findSecrets, historyText } from './helpers/history-scan';
import { eventually, pendingStep, sandboxDeps, waitForState, withIncidents } from './helpers/incident';
import { refusal } from './helpers/refusal';
import { keyDir, startAgent, type TestKey } from './helpers/ssh-keys';
import { connectTemporal, testWorker, uniqueTaskQueue, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
let sandbox: RunningSandbox;
let chat: ChatReceiver;
const keys = keyDir();
beforeAll(async () => {
  temporal = await connectTemporal();
  sandbox = await startSandbox({ users: 20, seed: 'signed-approvals-test' });
  chat = await startChatReceiver();
});
afterAll(async () => {
  await chat?.close();
  await sandbox?.close();
  await temporal?.close();
  keys.close();
});

const BOB = 'bob@example.com';
const CAROL = 'carol@example.com';
const DAVE = 'dave@example.com'; // on the incident's approver list, not in the registry
const bob = keys.key('bob');
const carol = keys.key('carol');
const mallory = keys.key('mallory');
const dave = keys.key('dave');

/** Gates that stay open while the test works (CLI calls are child processes on a loaded machine). */
const slow = { escalateAfter: '3m', decideWithin: '5m', probe: '2s' };
const outage: IncidentInput = { category: 'clerk_outage', reporter: 'alice@example.com', approvers: ['alice@example.com', BOB, CAROL, DAVE], summary: 'Users cannot sign in: Clerk API returns 503', timeouts: slow };

type Handle = WorkflowHandle<typeof incidentWorkflow>;

/** A worker whose approver registry is `registry` (undefined: signing off) while `body` runs; incidents started on its queue. */
async function withWorker<T>(registry: string | undefined, body: (start: (input: IncidentInput) => Promise<Handle>) => Promise<T>): Promise<T> {
  const taskQueue = uniqueTaskQueue('signed');
  const deps: ActivityDeps = { ...sandboxDeps(sandbox, chat.url), ...(registry ? { signing: { allowedSignersPath: registry, steps: [...CRITICAL_STEPS] } } : {}) };
  const worker = await testWorker(temporal.nativeConnection, taskQueue, deps);
  return withIncidents(temporal.client, worker, taskQueue, body);
}

function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), ...extra };
  delete env.TEMPORAL_NAMESPACE;
  delete env.SSH_AUTH_SOCK;
  if (!('INCIDENT_OPERATOR' in extra)) delete env.INCIDENT_OPERATOR;
  return { ...env, ...extra };
}
const incident = (args: string[], extra?: Record<string, string>): Promise<CliRun> => runCli('src/cli/incident.ts', args, cliEnv(extra));


/** The statement of a decision on `handle`'s pending `step`, with any field changed (to forge one). */
async function statementFor(handle: Handle, s: Pick<DecisionStatement, 'step' | 'decision' | 'reason' | 'approver'> & Partial<DecisionStatement>): Promise<DecisionStatement> {
  const [{ runId }, state] = await Promise.all([handle.describe(), handle.query(getIncidentState)]);
  const nonce = state.pendingApprovals.find((p) => p.step === s.step)?.nonce ?? state.pendingApprovals[0]?.nonce ?? '';
  return { workflowId: handle.workflowId, runId, nonce, ...s };
}
const signWith = (key: TestKey, statement: DecisionStatement, namespace = SIGNATURE_NAMESPACE) => keys.sign(key.file, decisionStatement(statement), namespace);

const acceptedUpdates = async (handle: Handle) =>
  ((await handle.fetchHistory()).events ?? []).flatMap((e) => {
    const r = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest;
    return r ? [r.input?.name ?? ''] : [];
  });

describe('signed approvals', () => {
  it('clerk_outage reaches the bypass only with two signatures from two registered keys; every forgery is refused before history', { timeout: 180_000 }, async () => {
    const registry = keys.allowedSigners([`${BOB} ${bob.publicLine}`, `${CAROL} namespaces="${SIGNATURE_NAMESPACE},git" ${carol.publicLine} carol's laptop`], 'outage_signers');
    await withWorker(registry, async (start) => {
      sandbox.admin.setOutage({ active: true, indicator: 'major' });
      const handle = await start(outage);
      const gated = await waitForState(handle, getIncidentState, pendingStep('emergency_bypass'), 30_000);
      sandbox.admin.setOutage({ active: false });
      const pending = gated.pendingApprovals[0];
      expect(pending).toMatchObject({ step: 'emergency_bypass', signatureRequired: true, nonce: expect.stringMatching(/^[0-9a-f-]{36}$/) });
      // The registry is in the state (and so in history) as public keys and fingerprints.
      expect(gated.signing?.signers.map((s) => [s.principals, s.fingerprint])).toEqual([
        [[BOB], bob.fingerprint],
        [[CAROL], carol.fingerprint],
      ]);
      expect(gated.timeline.find((t) => t.step === 'signing')?.description).toBe(`approver registry: 2 key(s) from ${registry}; signed decisions required for emergency_bypass, rotate_secret_key, revoke_all_sessions`);
      // The chat says how to sign, from the CLI and for the UI.
      const asked = await eventually(async () => chat.texts().find((t) => t.includes(handle.workflowId) && t.includes('Approval needed: emergency_bypass')));
      expect(asked).toContain(`npm run incident -- approve ${handle.workflowId} --step emergency_bypass --approver <you> --sign <~/.ssh/id_ed25519 | agent>`);
      expect(asked).toContain(`npm run incident -- sign ${handle.workflowId} approve --step emergency_bypass`);

      const approve = (req: Record<string, unknown>) => handle.executeUpdate('approveStep', { args: [{ step: 'emergency_bypass', ...req }] });
      const bobApproves = await statementFor(handle, { step: 'emergency_bypass', decision: 'approve', reason: 'status page confirms', approver: BOB });
      const forgeries: [string, Record<string, unknown>, RegExp][] = [
        ['unsigned', { approver: BOB }, /^update\.signature: emergency_bypass needs a decision signed with your SSH key: npm run incident -- approve .* --sign .*\(for the UI: npm run incident -- sign /],
        ['by a key not in the registry', { approver: BOB, comment: 'status page confirms', signature: signWith(mallory, bobApproves) }, new RegExp(`^update\\.signature: signed by key ${mallory.fingerprint.replace(/[+/]/g, '\\$&')}, which is not a key of ${BOB}`)],
        ['by another approver’s key', { approver: BOB, comment: 'status page confirms', signature: signWith(carol, bobApproves) }, /which is not a key of bob@example\.com in the approver registry/],
        ['for another step', { approver: BOB, comment: 'status page confirms', signature: signWith(bob, { ...bobApproves, step: 'revoke_all_sessions' }) }, /^update\.signature: does not verify for this decision/],
        ['for another decision', { approver: BOB, comment: 'status page confirms', signature: signWith(bob, { ...bobApproves, decision: 'reject' }) }, /does not verify/],
        ['for another incident', { approver: BOB, comment: 'status page confirms', signature: signWith(bob, { ...bobApproves, workflowId: 'incident-other' }) }, /does not verify/],
        ['for another run', { approver: BOB, comment: 'status page confirms', signature: signWith(bob, { ...bobApproves, runId: '00000000-0000-0000-0000-000000000000' }) }, /does not verify/],
        ['for an old nonce, named', { approver: BOB, comment: 'status page confirms', nonce: 'old-nonce', signature: signWith(bob, { ...bobApproves, nonce: 'old-nonce' }) }, /^update\.nonce: the signature answers another request \(nonce old-nonce\)/],
        ['for an old nonce, not named', { approver: BOB, comment: 'status page confirms', signature: signWith(bob, { ...bobApproves, nonce: 'old-nonce' }) }, /does not verify/],
        ['with a tampered comment', { approver: BOB, comment: 'status page confirms; also turn MFA off', signature: signWith(bob, bobApproves) }, /does not verify/],
        ['in another namespace (a git commit signature)', { approver: BOB, comment: 'status page confirms', signature: signWith(bob, bobApproves, 'git') }, /^update\.signature: was made for namespace "git", not "clerk-incident-runbook@v1"/],
        ['by an approver missing from the registry', { approver: DAVE, signature: signWith(dave, { ...bobApproves, approver: DAVE, reason: '' }) }, /^update\.signature: dave@example\.com has no key in the approver registry .*it lists bob@example\.com, carol@example\.com/],
        ['not a signature', { approver: BOB, signature: 'yes, really me' }, /^update\.signature: must be an armored SSH signature/],
        ['huge', { approver: BOB, signature: 'A'.repeat(100_000) }, /^update\.signature: Too big/],
        ['with an unknown field', { approver: BOB, signature: signWith(bob, bobApproves), signedBy: 'bob' }, /update\.signedBy: unknown field/],
      ];
      for (const [name, req, reason] of forgeries) {
        const message = await refusal(approve(req));
        expect(message, name).toMatch(reason);
        expect(message, name).not.toContain('\n');
      }
      // A rejection signed as an approval, and one with its reason changed, are refused too.
      const carolRejects = await statementFor(handle, { step: 'emergency_bypass', decision: 'reject', reason: 'not worth the risk', approver: CAROL });
      expect(await refusal(handle.executeUpdate('rejectStep', { args: [{ step: 'emergency_bypass', approver: CAROL, reason: 'not worth the risk', signature: signWith(carol, { ...carolRejects, decision: 'approve' }) }] }))).toMatch(/does not verify/);
      expect(await refusal(handle.executeUpdate('rejectStep', { args: [{ step: 'emergency_bypass', approver: CAROL, reason: 'worth the risk', signature: signWith(carol, carolRejects) }] }))).toMatch(/does not verify/);
      expect(await refusal(handle.executeUpdate('rejectStep', { args: [{ step: 'emergency_bypass', approver: CAROL, reason: 'not worth the risk' }] }))).toMatch(/npm run incident -- reject .* --reason "<why>" --sign/);

      // Nothing of the above reached history.
      expect(await acceptedUpdates(handle)).toEqual([]);
      // `show` gives the signing command for the pending step.
      const shown = await incident(['show', handle.workflowId]);
      expect(shown.stdout).toContain('a signed decision is required');
      expect(shown.stdout).toContain(`npm run incident -- approve ${handle.workflowId} --step emergency_bypass --approver <you> --sign`);

      // Bob signs with his key file through our CLI; Carol through an ssh-agent.
      const byBob = await incident(['approve', handle.workflowId, '--step', 'emergency_bypass', '--approver', BOB, '--comment', 'status page confirms', '--sign', bob.file], { INCIDENT_OPERATOR: 'bob@laptop' });
      expect(byBob.stderr).toBe('');
      expect(byBob).toMatchObject({ code: 0 });
      expect(byBob.stdout).toContain('emergency_bypass: 1 of 2 approvals');
      expect(byBob.stdout).toContain(`(signed with key ${bob.fingerprint})`);
      // Bob's signature again, now for the second approval: refused (two different approvers).
      expect(await refusal(approve({ approver: BOB, comment: 'status page confirms', signature: signWith(bob, bobApproves) }))).toMatch(/already approved emergency_bypass/);

      const agent = await startAgent(keys.dir);
      try {
        agent.add(mallory.file);
        agent.add(carol.file);
        const byCarol = await incident(['approve', handle.workflowId, '--step', 'emergency_bypass', '--approver', CAROL, '--sign', 'agent'], { INCIDENT_OPERATOR: 'carol@laptop', SSH_AUTH_SOCK: agent.socket });
        expect(byCarol.stderr).toBe('');
        expect(byCarol).toMatchObject({ code: 0 });
        expect(byCarol.stdout).toContain('emergency_bypass approved by bob@example.com and carol@example.com');
      } finally {
        agent.stop();
      }

      const state = await waitForState(handle, getIncidentState, (s) => s.gates[0]?.outcome === 'approved');
      expect(state.gates[0]?.approvals.map((a) => [a.approver, a.fingerprint])).toEqual([
        [BOB, bob.fingerprint],
        [CAROL, carol.fingerprint],
      ]);
      expect(state.timeline.filter((t) => t.step === 'emergency_bypass').map((t) => t.description)).toEqual(
        expect.arrayContaining([`approval 1 of 2: status page confirms (signed with key ${bob.fingerprint})`, `approved (signed with key ${carol.fingerprint})`]),
      );
      expect(await acceptedUpdates(handle)).toEqual(['approveStep', 'approveStep']);

      // The review names each decision's approver, signing key and client identity.
      await handle.cancel();
      const written = await eventually(() => handle.query(getReview), 30_000);
      expect(written.review.whoDecided.filter((d) => d.update === 'approveStep').map((d) => [d.named, d.fingerprint, d.identity])).toEqual([
        [BOB, bob.fingerprint, 'bob@laptop'],
        [CAROL, carol.fingerprint, 'carol@laptop'],
      ]);
      expect(written.markdown).toContain(`approveStep emergency_bypass: ${BOB}, key ${bob.fingerprint}, client identity bob@laptop`);

      // The signed history replays (the handler verifies again, deterministically) and holds no secret.
      await handle.result().catch(() => undefined);
      const history = await handle.fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: { codePath: inject('workflowBundlePath') }, replayName: 'signed' }, history, handle.workflowId);
      expect(findSecrets(history)).toEqual([]);
      expect(historyText(history)).toContain('BEGIN SSH SIGNATURE');
      expect(historyText(history)).not.toContain('PRIVATE KEY');
    });
  });

  it('sign prints the JSON the UI sends; unsigned decisions pass where no signature is required; the CLI says why it cannot sign', { timeout: 120_000 }, async () => {
    const registry = keys.allowedSigners([`${BOB} ${bob.publicLine}`, `${CAROL} ${carol.publicLine}`], 'ui_signers');
    await withWorker(registry, async (start) => {
      const compromise = await start({ category: 'key_compromise', reporter: 'alice@example.com', approvers: ['alice@example.com', BOB, CAROL], summary: 'sk_live key pasted in a public gist', dryRun: true, timeouts: slow });
      const middleware = await start({ category: 'middleware_failure', reporter: 'alice@example.com', approvers: ['alice@example.com', BOB], summary: 'every page answers 500', timeouts: slow });
      await waitForState(compromise, getIncidentState, pendingStep('rotate_secret_key'), 30_000);

      // The CLI refuses to sign what it cannot, with the reason (exit 1).
      const noAgent = await incident(['approve', compromise.workflowId, '--step', 'rotate_secret_key', '--approver', BOB, '--sign', 'agent']);
      expect(noAgent).toMatchObject({ code: 1, firstError: expect.stringMatching(/^error: --sign agent: SSH_AUTH_SOCK is not set/) });
      const noFile = await incident(['sign', compromise.workflowId, 'approve', '--step', 'rotate_secret_key', '--approver', BOB, '--key', `${keys.dir}/missing`]);
      expect(noFile).toMatchObject({ code: 1, firstError: expect.stringMatching(/^error: --key .*missing: cannot read the key file/) });

      const printed = await incident(['sign', compromise.workflowId, 'reject', '--step', 'rotate_secret_key', '--approver', CAROL, '--reason', 'the key was a test key', '--key', carol.file]);
      expect(printed).toMatchObject({ code: 0 });
      expect(printed.stderr).toContain('Send an Update → rejectStep');
      const pasted = JSON.parse(printed.stdout) as Record<string, unknown>;
      expect(Object.keys(pasted)).toEqual(['step', 'approver', 'reason', 'signature', 'nonce']);
      const decision = await compromise.executeUpdate('rejectStep', { args: [pasted as never] });
      expect(decision).toMatchObject({ decision: 'rejected', rejectedBy: CAROL });
      const rejected = await compromise.query(getIncidentState);
      expect(rejected.gates[0]?.rejection).toMatchObject({ approver: CAROL, fingerprint: carol.fingerprint });

      // operator_action is not a critical step: unsigned is fine, even with a registry.
      await waitForState(middleware, getIncidentState, pendingStep('operator_action'), 30_000);
      const pending = (await middleware.query(getIncidentState)).pendingApprovals[0];
      expect(pending).toMatchObject({ step: 'operator_action', signatureRequired: false });
      await expect(middleware.executeUpdate('approveStep', { args: [{ step: 'operator_action', approver: BOB }] })).resolves.toMatchObject({ decision: 'approved' });

      const badDecision = await incident(['sign', middleware.workflowId, 'maybe', '--step', 'operator_action', '--approver', BOB, '--key', bob.file]);
      expect(badDecision).toMatchObject({ code: 2, firstError: 'error: <decision>: must be approve or reject' });
    });
  });

  it('the registry is read at each incident start: a key rotated in the file applies to the next incident, not to the running one', { timeout: 120_000 }, async () => {
    const carolNew = keys.key('carol-rotated');
    const registry = keys.allowedSigners([`${BOB} ${bob.publicLine}`, `${CAROL} ${carol.publicLine}`], 'rotating_signers');
    await withWorker(registry, async (start) => {
      const first = await start(outage);
      await waitForState(first, getIncidentState, pendingStep('emergency_bypass'), 30_000);
      keys.allowedSigners([`${BOB} ${bob.publicLine}`, `${CAROL} ${carolNew.publicLine}`], 'rotating_signers');
      const second = await start(outage);
      const secondState = await waitForState(second, getIncidentState, pendingStep('emergency_bypass'), 30_000);
      expect(secondState.signing?.signers.map((s) => s.fingerprint)).toEqual([bob.fingerprint, carolNew.fingerprint]);
      expect((await first.query(getIncidentState)).signing?.signers.map((s) => s.fingerprint)).toEqual([bob.fingerprint, carol.fingerprint]);

      const carolApproves = (handle: Handle) => statementFor(handle, { step: 'emergency_bypass', decision: 'approve', reason: '', approver: CAROL });
      const send = (handle: Handle, signature: string) => handle.executeUpdate('approveStep', { args: [{ step: 'emergency_bypass', approver: CAROL, signature }] });
      expect(await refusal(send(second, signWith(carol, await carolApproves(second))))).toMatch(/which is not a key of carol@example\.com/);
      await expect(send(second, signWith(carolNew, await carolApproves(second)))).resolves.toMatchObject({ decision: 'pending' });
      expect(await refusal(send(first, signWith(carolNew, await carolApproves(first))))).toMatch(/which is not a key of carol@example\.com/);
      await expect(send(first, signWith(carol, await carolApproves(first)))).resolves.toMatchObject({ decision: 'pending' });
      // The nonces are the incidents' own: a signature for one does not verify in the other.
      const [s1, s2] = [await first.query(getIncidentState), await second.query(getIncidentState)];
      expect(s1.pendingApprovals[0]?.nonce).not.toBe(s2.pendingApprovals[0]?.nonce);
    });
  });

  it('two keys and two people: one key under two names, one person under two spellings, a key shared by a pattern — each gets one approval', { timeout: 180_000 }, async () => {
    // A pattern line gives bob and carol one shared key; carol also has her own.
    const shared = keys.key('team-shared');
    const registry = keys.allowedSigners([`"*@example.com" ${shared.publicLine}`, `${CAROL} ${carol.publicLine}`], 'pattern_signers');
    await withWorker(registry, async (start) => {
      const handle = await start(outage);
      await waitForState(handle, getIncidentState, pendingStep('emergency_bypass'), 30_000);
      const approve = async (approver: string, key: TestKey) =>
        handle.executeUpdate('approveStep', { args: [{ step: 'emergency_bypass', approver, signature: signWith(key, await statementFor(handle, { step: 'emergency_bypass', decision: 'approve', reason: '', approver })) }] });
      await expect(approve(BOB, shared)).resolves.toMatchObject({ decision: 'pending' });
      // The same key again under another name, and the same person under other spellings: refused.
      expect(await refusal(approve(CAROL, shared))).toMatch(/^update\.signature: key SHA256:\S+ already signed an approval of emergency_bypass; a critical step needs two different keys of two different people/);
      for (const spelling of ['Bob@example.com', 'ＢＯＢ@example.com', 'bob@EXAMPLE.com']) {
        expect(await refusal(approve(spelling, shared)), spelling).toMatch(/^update\.approver: /);
      }
      await expect(approve(CAROL, carol)).resolves.toMatchObject({ decision: 'approved' });
      const state = await waitForState(handle, getIncidentState, (s) => s.gates[0]?.outcome === 'approved');
      expect(state.gates[0]?.approvals.map((a) => [a.approver, a.fingerprint])).toEqual([
        [BOB, shared.fingerprint],
        [CAROL, carol.fingerprint],
      ]);
      expect(await acceptedUpdates(handle)).toEqual(['approveStep', 'approveStep']);
    });
    // A registry naming two people for one key is refused whole: the incident fails closed and says which line.
    const twoNames = keys.allowedSigners([`${BOB},${CAROL} ${bob.publicLine}`], 'two_name_signers');
    await withWorker(twoNames, async (start) => {
      const handle = await start(outage);
      const state = await waitForState(handle, getIncidentState, pendingStep('emergency_bypass'), 30_000);
      expect(state.signing).toMatchObject({ source: 'unreadable', signers: [] });
      expect(state.attention.join('\n')).toMatch(/line 1: key SHA256:\S+ names bob@example\.com, carol@example\.com; a key belongs to one person/);
      for (const approver of [BOB, CAROL]) {
        const signature = signWith(bob, await statementFor(handle, { step: 'emergency_bypass', decision: 'approve', reason: '', approver }));
        expect(await refusal(handle.executeUpdate('approveStep', { args: [{ step: 'emergency_bypass', approver, signature }] }))).toMatch(/has no key in the approver registry \(unreadable\)/);
      }
      expect(await acceptedUpdates(handle)).toEqual([]);
    });
    // The incident's approver list cannot name one person twice either.
    await withWorker(undefined, async (start) => {
      const handle = await start({ ...outage, approvers: ['alice@example.com', 'Alice@example.com', 'ａｌｉｃｅ@example.com', BOB] });
      await expect(handle.result()).rejects.toThrow();
      const failure = ((await handle.fetchHistory()).events ?? []).find((e) => e.workflowExecutionFailedEventAttributes)?.workflowExecutionFailedEventAttributes?.failure?.message ?? '';
      expect(failure).toMatch(/input\.approvers\.1: Alice@example\.com is the same person as alice@example\.com/);
      expect(failure).toMatch(/input\.approvers\.2: ａｌｉｃｅ@example\.com is the same person as alice@example\.com/);
    });
  });

  it('without a registry, signing is off: a signed decision is refused, an unsigned one accepted', { timeout: 90_000 }, async () => {
    await withWorker(undefined, async (start) => {
      const handle = await start(outage);
      const state: IncidentState = await waitForState(handle, getIncidentState, pendingStep('emergency_bypass'), 30_000);
      expect(state.signing).toBeUndefined();
      expect(state.pendingApprovals[0]?.nonce).toBeUndefined();
      const signature = signWith(bob, await statementFor(handle, { step: 'emergency_bypass', decision: 'approve', reason: '', approver: BOB }));
      expect(await refusal(handle.executeUpdate('approveStep', { args: [{ step: 'emergency_bypass', approver: BOB, signature }] }))).toMatch(/^update\.signature: this incident has no approver registry/);
      await expect(handle.executeUpdate('approveStep', { args: [{ step: 'emergency_bypass', approver: BOB }] })).resolves.toMatchObject({ decision: 'pending' });
    });
  });

  it('a registry that cannot be read when the incident starts fails closed: no critical step can be approved', { timeout: 90_000 }, async () => {
    const registry = keys.allowedSigners([`${BOB} ${bob.publicLine}`], 'vanishing_signers');
    await withWorker(registry, async (start) => {
      rmSync(registry);
      const handle = await start(outage);
      const state = await waitForState(handle, getIncidentState, pendingStep('emergency_bypass'), 30_000);
      expect(state.signing).toMatchObject({ source: 'unreadable', signers: [] });
      expect(state.attention.join('\n')).toContain('approver registry unreadable');
      const signature = signWith(bob, await statementFor(handle, { step: 'emergency_bypass', decision: 'approve', reason: '', approver: BOB }));
      expect(await refusal(handle.executeUpdate('approveStep', { args: [{ step: 'emergency_bypass', approver: BOB, signature }] }))).toMatch(/bob@example\.com has no key in the approver registry \(unreadable\)/);
      expect(await refusal(handle.executeUpdate('approveStep', { args: [{ step: 'emergency_bypass', approver: BOB }] }))).toMatch(/needs a decision signed/);
    });
  });
});
