/**
 * `IncidentRun`, what a playbook can do, over the incident's tracker: ask (approvals, optional
 * requests, steps by hand), record, and act through one object per capability (diagnostics,
 * bypass, verification, rotation, revocation, reconciliation), each in its own module. A new
 * capability is a new module and one field here. Each step records its outcome; none throws but
 * cancellation.
 */
import type { GatedStep, ManualStep, ValidIncidentInput } from '../domain';
import { chatInline } from '../render-safe';
import { waitForApproval } from './incident-approvals';
import { EmergencyBypass } from './incident-bypass';
import { IncidentClose } from './incident-close';
import { Diagnostics } from './incident-diagnostics';
import type { IncidentRun } from './incident-playbooks';
import { Reconciliation } from './incident-reconcile';
import { ManualSteps, OptionalSteps, Resolution } from './incident-requests';
import { Revocation } from './incident-revocation';
import { SecretKeyRotation } from './incident-rotation';
import { IncidentTracker, notifications } from './incident-state';
import { incidentContext, type IncidentContext } from './incident-steps';
import type { GateOutcome, StepRequest } from './incident-types';
import { Verification } from './incident-verification';

export class Incident implements IncidentRun {
  readonly tracker: IncidentTracker;
  readonly optionalSteps: OptionalSteps;
  readonly manualSteps: ManualSteps;
  readonly resolution: Resolution;
  private readonly ctx: IncidentContext;

  readonly diagnostics: Diagnostics;
  readonly verification: Verification;
  /** The emergency auth bypass of a Clerk outage (`extendBypass` goes to it). */
  readonly bypass: EmergencyBypass;
  /** The key rotation (`provideNewKey` and `confirmOldKeyDeleted` go to its inbox). */
  readonly rotation: SecretKeyRotation;
  readonly revocation: Revocation;
  readonly reconciliation: Reconciliation;
  /** Conclude, close, cancel, and the review written last. */
  readonly ending: IncidentClose;

  constructor(private readonly input: ValidIncidentInput) {
    this.tracker = new IncidentTracker(input);
    this.optionalSteps = new OptionalSteps(this.tracker);
    this.manualSteps = new ManualSteps(this.tracker);
    this.resolution = new Resolution(this.tracker);
    this.ctx = incidentContext(this.tracker, input, this.manualSteps);
    this.diagnostics = new Diagnostics(this.ctx);
    this.verification = new Verification(this.ctx);
    this.bypass = new EmergencyBypass(this.ctx, this.verification);
    this.rotation = new SecretKeyRotation(this.ctx);
    this.revocation = new Revocation(this.ctx);
    this.reconciliation = new Reconciliation(this.ctx);
    this.ending = new IncidentClose(this.ctx, this.resolution);
  }

  /** The users named as affected; the users of a targeted revocation in the input otherwise. */
  get affectedUserIds(): readonly string[] {
    return this.input.affectedUserIds.length ? this.input.affectedUserIds : (this.input.targetedRevocation?.userIds ?? []);
  }

  // -- the incident notice ----------------------------------------------------------------------

  /** Reversible: announce the incident in the channel; cancelling the incident withdraws it. */
  async postIncidentNotice(): Promise<void> {
    const dry = this.ctx.input.dryRun ? '[dry run] ' : '';
    const { incidentId, summary } = this.tracker.state;
    // Sent directly (not tracker.notify: it has an undo), so one line here.
    const text = chatInline(`${dry}We are investigating an authentication incident: ${summary} (category ${this.tracker.state.category ?? 'unknown'}, severity ${this.tracker.state.severity ?? 'unknown'}).`);
    await this.ctx.compensations.apply(
      'incident_notice',
      'post the incident notice',
      () => notifications.notify.executeWithOptions({ summary: 'incident_notice: post the incident notice' }, [
        { kind: 'incident_notice', incidentId, title: 'Incident notice', text },
      ]),
      {
        title: 'withdraw the incident notice',
        run: () =>
          notifications.notify.executeWithOptions({ summary: 'compensation: withdraw the incident notice' }, [
            { kind: 'incident_notice_withdrawn', incidentId, title: 'Incident notice withdrawn', text: `${dry}The incident notice "${chatInline(summary)}" is withdrawn: the incident was cancelled.` },
          ]),
      },
      // Say where it went: a notice only the worker's console saw reached no channel.
      (r) => (r.delivered === 'console' ? "post the incident notice: delivered to the worker's console only (no CHAT_WEBHOOK_URL), not to a channel" : 'post the incident notice'),
    );
  }

  // -- steps recorded, steps by hand ------------------------------------------------------------

  notAutomatedYet(step: string, what: string, details?: Record<string, unknown>): void {
    this.tracker.stepDone(step, 'not_automated', 'runbook', `${what} (not automated yet: do it by hand)`, details);
    this.tracker.attention(`${step} is not automated yet: ${what}`);
  }

  notNeeded(step: string, why: string): void {
    this.tracker.stepDone(step, 'not_needed', 'runbook', why);
  }

  skipped(step: string, why: string): void {
    this.tracker.stepDone(step, 'skipped', 'runbook', why);
    this.tracker.attention(`${step} skipped: ${why}`);
  }

  byHand(step: ManualStep, instructions: string): Promise<boolean> {
    return this.ctx.byHand(step, instructions);
  }

  // -- approvals and optional requests ----------------------------------------------------------

  approval(step: GatedStep, title: string): Promise<GateOutcome> {
    const requestedBy = this.optionalSteps.get(step)?.requester ?? this.tracker.state.reporter;
    return waitForApproval(this.tracker, { step, title, requestedBy, ...this.ctx.gateTimeouts(step) });
  }

  async optionalRequest(step: GatedStep, what: string): Promise<StepRequest | undefined> {
    const fromInput = this.ctx.input.targetedRevocation;
    if (step === 'targeted_revocation' && fromInput) {
      const req: StepRequest = { step, requester: this.tracker.state.reporter, userIds: fromInput.userIds, reason: 'in the incident input' };
      this.optionalSteps.fromInput(req, `requested in the incident input (${fromInput.userIds.length} user(s))`);
    }
    return this.optionalSteps.awaitRequest(step, what, this.ctx.gateTimeouts(step).decideWithin);
  }
}
