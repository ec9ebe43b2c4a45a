/**
 * Signed approvals in the incident workflow: the approver registry read when the incident starts
 * (recorded before any gate opens), a fresh nonce on every approval request, and the check
 * the update validators run — an SSH signature by the approver's registered key over the
 * canonical statement of this very decision — before anything reaches history.
 */
import { isCancellation, proxyActivities, uuid4, workflowInfo } from '@temporalio/workflow';
import type { SigningActivities } from '../activities';
import { CRITICAL_STEPS, type GatedStep } from '../domain';
import { INCIDENT_COMMANDS } from '../shared';
import { decisionStatement, keysOf, parseSshSignature, SIGNATURE_NAMESPACE, SignatureError, verifySshSignature, type SshSignature } from '../signing/sshsig';
import { errorMessage, type IncidentTracker } from './incident-state';
import type { ApprovalGate, IncidentState } from './incident-types';

const activities = proxyActivities<SigningActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: ['ApproverRegistryUnreadable'] },
});

/**
 * Read the worker's approver registry into the incident (and so into its history). A registry
 * that is configured but unreadable fails closed: the critical steps need signatures no key can give.
 */
export async function loadApproverRegistry(tracker: IncidentTracker): Promise<void> {
  try {
    const registry = await activities.loadApproverRegistry.executeWithOptions({ summary: 'signing: read the approver registry (allowed_signers)' }, []);
    if (!registry) return;
    tracker.state.signing = registry;
    const steps = registry.steps.length ? registry.steps.join(', ') : 'no step';
    tracker.record('signing', 'runbook', `approver registry: ${registry.signers.length} key(s) from ${registry.source}; signed decisions required for ${steps}`, {
      namespace: registry.namespace,
      signers: registry.signers.map((s) => `${s.principals.join(',')} ${s.keyType} ${s.fingerprint}`),
      ...(registry.problems.length ? { problems: registry.problems } : {}),
    });
    for (const problem of registry.problems) tracker.attention(`approver registry ${registry.source} ${problem}`);
  } catch (err) {
    if (isCancellation(err)) throw err;
    tracker.state.signing = { source: 'unreadable', namespace: SIGNATURE_NAMESPACE, steps: [...CRITICAL_STEPS], signers: [], problems: [errorMessage(err)] };
    tracker.record('signing', 'runbook', `the approver registry could not be read: ${errorMessage(err)}; critical steps cannot be approved in this incident`);
    tracker.attention(`approver registry unreadable (${errorMessage(err)}): critical steps cannot be approved`);
  }
}

/** A new approval request: with a registry, a fresh nonce (the SDK's deterministic random) and whether it must be signed. */
export function openSignedGate(state: Pick<IncidentState, 'signing'>, gate: ApprovalGate): void {
  if (!state.signing) return;
  gate.nonce = uuid4();
  gate.signatureRequired = state.signing.steps.includes(gate.step);
}

export interface SignedFields {
  step: GatedStep;
  approver: string;
  signature?: string | undefined;
  nonce?: string | undefined;
}

/** A signed decision refused; incident-approvals.ts turns it into its `UpdateRefused`. */
export class SignatureRefused extends Error {
  override readonly name = 'SignatureRefused';
}

const refuse = (message: string): never => {
  throw new SignatureRefused(message);
};

function parseSignature(armored: string): SshSignature {
  try {
    return parseSshSignature(armored);
  } catch (err) {
    if (err instanceof SignatureError) return refuse(`update.signature: ${err.message}`);
    throw err;
  }
}

/**
 * Throws `SignatureRefused` unless the decision carries what the incident's policy asks: for a step
 * that must be signed, an SSH signature by one of the approver's registered keys over this
 * decision's statement. Returns the fingerprint of the key that signed it (undefined: unsigned).
 */
export function checkDecisionSignature(
  state: Pick<IncidentState, 'signing' | 'incidentId'>,
  gate: ApprovalGate,
  req: SignedFields,
  decision: 'approve' | 'reject',
  reason: string,
): string | undefined {
  const registry = state.signing;
  if (!registry) {
    if (req.signature !== undefined || req.nonce !== undefined) {
      refuse('update.signature: this incident has no approver registry (its worker had no APPROVER_ALLOWED_SIGNERS when it started); send the decision unsigned');
    }
    return undefined;
  }
  if (req.signature === undefined) {
    if (!gate.signatureRequired) return undefined;
    const cli = INCIDENT_COMMANDS.decideSigned(state.incidentId, gate.step, decision);
    const ui = INCIDENT_COMMANDS.sign(state.incidentId, gate.step, decision);
    return refuse(`update.signature: ${gate.step} needs a decision signed with your SSH key: ${cli} (for the UI: ${ui})`);
  }
  const nonce = gate.nonce ?? '';
  if (req.nonce !== undefined && req.nonce !== nonce) {
    refuse(`update.nonce: the signature answers another request (nonce ${req.nonce.slice(0, 64)}); the pending request of ${gate.step} has nonce ${nonce}: sign again`);
  }
  const sig = parseSignature(req.signature);
  const keys = keysOf(registry.signers, req.approver);
  if (!keys.length) {
    refuse(`update.signature: ${req.approver} has no key in the approver registry (${registry.source}); it lists ${registry.signers.flatMap((s) => s.principals).join(', ') || 'nobody'}`);
  }
  const key = keys.find((k) => k.fingerprint === sig.fingerprint);
  if (!key) refuse(`update.signature: signed by key ${sig.fingerprint}, which is not a key of ${req.approver} in the approver registry (${keys.map((k) => k.fingerprint).join(', ')})`);
  if (key?.namespaces && !key.namespaces.includes(registry.namespace)) {
    refuse(`update.signature: the approver registry allows ${req.approver}'s key only for namespaces ${key.namespaces.join(', ')}, not ${registry.namespace}`);
  }
  if (decision === 'approve' && gate.approvals.some((a) => a.fingerprint === sig.fingerprint)) {
    refuse(`update.signature: key ${sig.fingerprint} already signed an approval of ${gate.step}; a critical step needs two different keys of two different people`);
  }
  const statement = decisionStatement({ workflowId: state.incidentId, runId: workflowInfo().runId, step: gate.step, decision, reason, approver: req.approver, nonce });
  try {
    verifySshSignature(sig, statement, registry.namespace);
  } catch (err) {
    if (!(err instanceof SignatureError)) throw err;
    if (err.message !== 'does not verify') refuse(`update.signature: ${err.message}`);
    refuse(
      `update.signature: does not verify for this decision (${decision} ${gate.step} of ${state.incidentId} by ${req.approver}, ${reason ? 'with the text sent' : 'without text'}, nonce ${nonce}): it was made for another incident, step, decision, text or request`,
    );
  }
  return sig.fingerprint;
}
