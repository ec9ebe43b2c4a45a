/**
 * The on-call roster in the incident (docs/roster.md): read from the worker when the incident
 * starts and recorded (its version decides every later update, carried by continue-as-new); the
 * input's names checked against it; and the one check every state-changing update runs with a
 * roster — the person resolved, the roster's policy applied, the signature verified when the
 * policy asks for one. Without a roster none of this applies (approvals are unauthenticated).
 */
import { ApplicationFailure, proxyActivities, uuid4, workflowInfo } from '@temporalio/workflow';
import type { RosterActivities } from '../activities';
import { approvalsNeeded } from '../domain';
import { checkDecision, ruleFor, signatureRequired, type DecisionCheck, type RecordedDecision } from '../roster/policy';
import { expandRefs, inputNameProblems, isMonitorReporter } from '../roster/resolve';
import type { PolicyAction, PolicyStep, RosterPerson } from '../roster/schema';
import { decisionStatement, parseSshSignature, SIGNATURE_NAMESPACE, SignatureError, verifySshSignature } from '../signing/sshsig';
import { INCIDENT_COMMANDS } from '../shared';
import type { ApprovalGate, IncidentRoster, IncidentState } from './incident-types';
import { UpdateRefused } from './incident-errors';

/** What loading needs of the tracker (incident-state.ts), without importing it. */
interface Recorder {
  state: IncidentState;
  record(step: string, actor: string, description: string, details?: Record<string, unknown>): void;
}

const activities = proxyActivities<RosterActivities>({ startToCloseTimeout: '10 seconds', retry: { initialInterval: '1 second', maximumAttempts: 3 } });


const invalid = (message: string) => ApplicationFailure.create({ type: 'InvalidIncidentInput', message, nonRetryable: true });

/**
 * Read the worker's roster into the incident, and refuse an input whose reporter or approvers are
 * not in it (the workflow fails with `InvalidIncidentInput`, the field named). No roster: nothing.
 */
export async function loadRoster(tracker: Recorder): Promise<void> {
  const roster = await activities.loadRoster.executeWithOptions({ summary: 'roster: read the on-call roster' }, []);
  if (!roster) return;
  const { state } = tracker;
  const problems = inputNameProblems(roster, state);
  if (problems.length) {
    throw invalid(
      problems
        .map((p) => (p.field === 'reporter' ? `input.reporter: ${p.message} (roster ${roster.source}; a monitor reports as "monitor:<name>")` : `input.approvers[${p.index}]: ${p.message}`))
        .join('; '),
    );
  }
  const expanded = expandRefs(roster, state.approvers);
  state.roster = { roster, nonce: uuid4() };
  const people = expanded.ok ? expanded.people.map((p) => p.id) : [];
  tracker.record('roster', 'runbook', `roster ${roster.version.slice(0, 19)} from ${roster.source}: ${roster.people.length} people, rotations ${Object.keys(roster.rotations).join(', ') || 'none'}; every decision is checked against its ${roster.policy.rules.length} rule(s)`, {
    version: roster.version,
    source: roster.source,
    approvers: people,
  });
}

/** The people the incident's approvers name (all of them when it names none), by roster id. */
export function approverPeople(state: Pick<IncidentState, 'approvers'> & { roster: IncidentRoster }): RosterPerson[] {
  const expanded = expandRefs(state.roster.roster, state.approvers);
  return expanded.ok ? expanded.people : [];
}

/** With a roster: what a new gate needs (the policy's approvals, never fewer than the step's), its nonce, and whether it is signed. */
export function openRosterGate(state: IncidentState, gate: ApprovalGate): void {
  if (!state.roster) return;
  const roster = state.roster.roster;
  const ctx = { ...(state.category ? { category: state.category } : {}), severity: state.severity ?? 'critical', step: gate.step, action: 'approve' as const };
  gate.approvalsNeeded = Math.max(approvalsNeeded(gate.step), ruleFor(roster, ctx)?.approvals ?? 1);
  gate.nonce = uuid4();
  gate.signatureRequired = signatureRequired(roster, ctx) || signatureRequired(roster, { ...ctx, action: 'reject' });
}

/** Who may still approve a gate, by the roster: listed, permitted by the policy, not the requester, not already approved. */
export function eligibleApprovers(state: IncidentState, gate: ApprovalGate): string[] {
  if (!state.roster) return [];
  const people = approverPeople({ approvers: state.approvers, roster: state.roster });
  return people
    .filter((p) => {
      const check = rosterCheck(state, { action: 'approve', step: gate.step, who: p.id, requester: gate.requestedBy, gate });
      return check.allowed || check.code === 'signature_required';
    })
    .map((p) => p.id);
}

export interface UpdateByPerson {
  action: PolicyAction;
  step: PolicyStep;
  /** The request's field that names the person (`approver`, `confirmedBy`…), for refusals. */
  field: string;
  who: string;
  /** What the signature covers besides the action: the comment or reason of a gate decision, else `actionText(request)`. */
  text: string;
  signature?: string | undefined;
  nonce?: string | undefined;
  /** Gate decisions: the gate (its requester, approvals and nonce). */
  gate?: ApprovalGate;
}

/** Who acted, as the incident records it: the roster person's id, and the key that signed. */
export interface Acting {
  person: string;
  fingerprint?: string;
  check?: Extract<DecisionCheck, { allowed: true }>;
}

function rosterCheck(state: IncidentState, u: { action: PolicyAction; step: PolicyStep; who: string; requester: string; gate?: ApprovalGate; fingerprint?: string }): DecisionCheck {
  const roster = state.roster?.roster;
  if (!roster) throw new Error('rosterCheck without a roster');
  const decisions: RecordedDecision[] = u.gate && u.action === 'approve' ? u.gate.approvals.map((a) => ({ person: a.approver, action: 'approve', ...(a.fingerprint ? { keyFingerprint: a.fingerprint } : {}) })) : [];
  const ctx = {
    ...(state.category ? { category: state.category } : {}),
    severity: state.severity ?? 'critical',
    step: u.step,
    action: u.action,
    ...(state.approvers.length ? { approvers: state.approvers } : {}),
  };
  return checkDecision(roster, ctx, isMonitorReporter(u.requester) ? undefined : u.requester, decisions, { person: u.who, ...(u.fingerprint ? { keyFingerprint: u.fingerprint } : {}) });
}

/** The fingerprint of the key whose signature over this update verifies; refuses a signature that does not. */
function verifiedKey(state: IncidentState & { roster: IncidentRoster }, u: UpdateByPerson & { signature: string }): string {
  const nonce = u.gate?.nonce ?? state.roster.nonce;
  if (u.nonce !== undefined && u.nonce !== nonce) throw new UpdateRefused(`update.nonce: the signature answers another request (nonce ${u.nonce.slice(0, 64)}); this one has nonce ${nonce}: sign again`);
  try {
    const sig = parseSshSignature(u.signature);
    const statement = decisionStatement({ workflowId: state.incidentId, runId: workflowInfo().runId, step: u.step, decision: u.action, reason: u.text, approver: u.who, nonce });
    verifySshSignature(sig, statement, SIGNATURE_NAMESPACE);
    return sig.fingerprint;
  } catch (err) {
    if (!(err instanceof SignatureError)) throw err;
    if (err.message !== 'does not verify') throw new UpdateRefused(`update.signature: ${err.message}`);
    throw new UpdateRefused(`update.signature: does not verify for this update (${u.action} ${u.step} of ${state.incidentId} by ${u.who}, nonce ${nonce}): it was made for another incident, step, action, text or request`);
  }
}

const SIGNATURE_CODES = new Set(['signature_required', 'key_not_theirs', 'key_reused']);

/**
 * The check of one update by a person. Without a roster: the person as given (the caller's own
 * checks apply). With one: resolved, the policy applied, the signature verified; refusals name the field.
 */
export function actingPerson(tracker: { state: IncidentState }, u: UpdateByPerson): Acting {
  const { state } = tracker;
  if (!state.roster) return { person: u.who };
  const withRoster = state as IncidentState & { roster: IncidentRoster };
  const fingerprint = u.signature === undefined ? undefined : verifiedKey(withRoster, { ...u, signature: u.signature });
  const check = rosterCheck(state, { action: u.action, step: u.step, who: u.who, requester: u.gate?.requestedBy ?? state.reporter, ...(u.gate ? { gate: u.gate } : {}), ...(fingerprint ? { fingerprint } : {}) });
  if (!check.allowed) {
    const field = SIGNATURE_CODES.has(check.code) ? 'signature' : u.field;
    const how = check.code === 'signature_required' ? `; sign it: ${u.gate ? INCIDENT_COMMANDS.decideSigned(state.incidentId, u.gate.step, u.action === 'reject' ? 'reject' : 'approve') : `npm run incident -- <command> ${state.incidentId} … --sign <~/.ssh/id_ed25519 | agent>`}` : '';
    throw new UpdateRefused(`update.${field}: ${check.reason}${how}`);
  }
  return { person: check.person.id, ...(fingerprint ? { fingerprint } : {}), check };
}

/** After a signed update other than a gate decision: a new nonce, so that signature cannot be sent again. */
export function spendNonce(state: IncidentState, acting: Acting): void {
  if (state.roster && acting.fingerprint) state.roster.nonce = uuid4();
}
