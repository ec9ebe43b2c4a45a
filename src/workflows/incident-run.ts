/**
 * `IncidentRun`, what a playbook can do, over the incident's tracker: ask (approvals, optional
 * requests, steps by hand), record, and act through one object per capability (diagnostics,
 * bypass, verification, rotation, revocation, reconciliation, rollback), each in its own module. A new
 * capability is a new module and one field here. Each step records its outcome; none throws but
 * cancellation.
 */
import { workflowInfo } from '@temporalio/workflow';
import type { GatedStep, ManualStep, ValidIncidentInput } from '../domain';
import { chatInline } from '../render-safe';
import { waitForApproval } from './incident-approvals';
import { EmergencyBypass } from './incident-bypass';
import { IncidentClose } from './incident-close';
import { boundedAttention, boundedTimeline, carriedState, HistoryGuard, Journal, type CarriedIncident } from './incident-continue';
import { Diagnostics } from './incident-diagnostics';
import type { IncidentRun } from './incident-playbooks';
import { Reconciliation } from './incident-reconcile';
import { ManualSteps, OptionalSteps, Resolution } from './incident-requests';
import { Revocation } from './incident-revocation';
import { Remedies } from './incident-remedies';
import { Rollback } from './incident-rollback';
import { SecretKeyRotation } from './incident-rotation';
import { IncidentTracker } from './incident-state';
import { incidentContext, type IncidentContext } from './incident-steps';
import type { GateOutcome, StepRequest } from './incident-types';
import { Verification } from './incident-verification';

/** The longest a verified rollback's undo is offered by default (`timeouts.steps.undo_rollback.decideWithin` sets it). */
const UNDO_ROLLBACK_WINDOW_MS = 15 * 60_000;

export class Incident {
  readonly tracker: IncidentTracker;
  readonly optionalSteps: OptionalSteps;
  readonly manualSteps: ManualSteps;
  readonly resolution: Resolution;
  private readonly ctx: IncidentContext;
  /** When to continue as new, and the safe points where it may (incident-continue.ts). */
  readonly guard: HistoryGuard;
  /** The outcomes of the steps done: a continued run takes them instead of doing the steps again. */
  readonly journal: Journal;

  readonly diagnostics: Diagnostics;
  readonly verification: Verification;
  /** The emergency auth bypass of a Clerk outage (`extendBypass` goes to it). */
  readonly bypass: EmergencyBypass;
  /** The key rotation (`provideNewKey` and `confirmOldKeyDeleted` go to its inbox). */
  readonly rotation: SecretKeyRotation;
  readonly revocation: Revocation;
  readonly reconciliation: Reconciliation;
  /** The rollback of middleware_failure to the last good deployment. */
  readonly rollback: Rollback;
  /** The remedies of a diagnosis (session_issues, middleware_failure). */
  readonly remedies: Remedies;
  /** Conclude, close, cancel, and the review written last. */
  readonly ending: IncidentClose;
  /** What the playbook is given: every step journaled; one a continue-as-new must not cut is atomic. */
  readonly run: IncidentRun;

  constructor(
    private readonly input: ValidIncidentInput,
    carried?: CarriedIncident,
  ) {
    this.tracker = new IncidentTracker(input, carried && carriedState(carried));
    this.journal = new Journal(carried?.journal);
    this.guard = new HistoryGuard(() => this.tracker.flushNotifications());
    this.optionalSteps = new OptionalSteps(this.tracker);
    this.manualSteps = new ManualSteps(this.tracker);
    this.resolution = new Resolution(this.tracker);
    this.optionalSteps.guard = this.guard;
    this.resolution.guard = this.guard;
    this.ctx = incidentContext(this.tracker, input, this.manualSteps, this.guard);
    this.diagnostics = new Diagnostics(this.ctx);
    this.verification = new Verification(this.ctx);
    this.bypass = new EmergencyBypass(this.ctx, this.verification);
    this.rotation = new SecretKeyRotation(this.ctx);
    this.revocation = new Revocation(this.ctx);
    this.reconciliation = new Reconciliation(this.ctx);
    this.rollback = new Rollback(this.ctx, this.verification, this.diagnostics);
    this.remedies = new Remedies(this.ctx, this.diagnostics, this.verification);
    this.ending = new IncidentClose(this.ctx, this.resolution, this.journal);
    this.run = this.journaledRun();
    if (carried) this.restoreWaits(carried);
  }

  private journaledRun(): IncidentRun {
    const j = this.journal;
    const step = <T>(name: string, run: () => Promise<T>) => j.once(name, () => this.guard.atomic(run));
    const { diagnostics, verification, bypass, rotation, revocation, reconciliation, rollback, remedies } = this;
    return {
      approval: (s, title) => this.approval(s, title),
      optionalRequest: (s, what) => this.optionalRequest(s, what),
      byHand: (s, instructions) => this.byHand(s, instructions),
      notAutomatedYet: (s, what, details) => this.notAutomatedYet(s, what, details),
      notNeeded: (s, why) => this.notNeeded(s, why),
      skipped: (s, why) => this.skipped(s, why),
      affectedUserIds: this.affectedUserIds,
      diagnostics: { run: (kind, userIds, o) => step('diagnostics.run', () => diagnostics.run(kind, userIds, o)) },
      // The watches are safe points: journaled, not atomic.
      verification: { watchRecovery: () => j.once('verification.watchRecovery', () => verification.watchRecovery()), verifyFix: (s) => step('verification.verifyFix', () => verification.verifyFix(s)) },
      bypass: {
        on: () => step('bypass.on', () => bypass.on()),
        get automated() {
          return bypass.automated;
        },
        watchWhileOn: () => j.once('bypass.watchWhileOn', () => bypass.watchWhileOn()),
      },
      rotation: { rotateSecretKey: () => step('rotation.rotateSecretKey', () => rotation.rotateSecretKey()) },
      revocation: { revokeSessions: (s, scope) => step('revocation.revokeSessions', () => revocation.revokeSessions(s, scope)) },
      reconciliation: { reconcileUsers: (s) => step('reconciliation.reconcileUsers', () => reconciliation.reconcileUsers(s)) },
      rollback: {
        // A continued run takes the proposal from the journal: the verification needs it.
        propose: async (d) => (rollback.proposal = await step('rollback.propose', () => rollback.propose(d))),
        rollBack: (p) => step('rollback.rollBack', () => rollback.rollBack(p)),
        get attempted() {
          return rollback.attempted;
        },
        verify: (s) => step('rollback.verify', () => rollback.verify(s)),
        get undoable() {
          return rollback.undoable;
        },
        undo: (s) => step('rollback.undo', () => rollback.undo(s)),
      },
      remedies: {
        // A continued run takes the choice from the journal: the verification needs it.
        propose: async (d) => (remedies.chosen = await step('remedies.propose', () => remedies.propose(d))),
        get chosen() {
          return remedies.chosen;
        },
        verifyRevocation: () => j.onceSync('remedies.verifyRevocation', () => remedies.verifyRevocation()),
        applyAllowedOrigins: (r) => step('remedies.applyAllowedOrigins', () => remedies.applyAllowedOrigins(r)),
        sessionSettingsAutomated: () => step('remedies.sessionSettingsAutomated', () => remedies.sessionSettingsAutomated()),
        applySessionLifetime: (r) => step('remedies.applySessionLifetime', () => remedies.applySessionLifetime(r)),
        deployedEnvAutomated: () => step('remedies.deployedEnvAutomated', () => remedies.deployedEnvAutomated()),
        applyDeployedPublishableKey: (r) => step('remedies.applyDeployedPublishableKey', () => remedies.applyDeployedPublishableKey(r)),
        verify: (k, r, o) => step('remedies.verify', () => remedies.verify(k, r, o)),
      },
    };
  }

  // -- continue-as-new ----------------------------------------------------------------------------

  private restoreWaits(c: CarriedIncident): void {
    this.optionalSteps.restore(c.optional);
    if (c.resolution) {
      this.resolution.waiting = { since: c.resolution.since, escalated: c.resolution.escalated };
      if (c.resolution.accepted) this.resolution.accepted = c.resolution.accepted;
    }
    if (c.recoveryChecks !== undefined) this.verification.recoveryChecks = c.recoveryChecks;
    if (c.bypassWatch) this.bypass.watch = c.bypassWatch;
  }

  /**
   * The compensation list of a continued run, rebuilt from its state in the order the steps ran:
   * the notice withdrawn if it was posted, an unconfirmed rollback promoted back, the bypass turned off if it is on.
   */
  async restoreCompensations(): Promise<void> {
    const { steps, bypass } = this.tracker.state;
    const notice = steps.filter((s) => s.step === 'incident_notice').at(-1);
    if (notice?.outcome === 'succeeded') this.ctx.compensations.push('incident_notice', 'withdraw the incident notice', () => this.withdrawNotice());
    this.rollback.restore();
    this.remedies.restore();
    if (bypass) await this.bypass.restore(bypass, this.bypass.watch);
  }

  /** What the next run needs: the state (bounded), the journal, where each wait is. */
  carry(runs: number, dropped: CarriedIncident['dropped']): CarriedIncident {
    const state = this.tracker.snapshot();
    const runId = workflowInfo().runId;
    const watch = this.bypass.watch;
    return {
      runs,
      state: { ...state, pendingApprovals: [], timeline: boundedTimeline(state.timeline, runId), attention: boundedAttention(state.attention) },
      journal: this.journal.done,
      optional: this.optionalSteps.carry(),
      ...(this.resolution.waiting ? { resolution: { ...this.resolution.waiting, ...(this.resolution.accepted ? { accepted: this.resolution.accepted } : {}) } } : {}),
      ...(this.verification.recoveryChecks !== undefined ? { recoveryChecks: this.verification.recoveryChecks } : {}),
      ...(watch ? { bypassWatch: watch } : {}),
      dropped,
    };
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
      () => this.tracker.deliver({ kind: 'incident_notice', incidentId, title: 'Incident notice', text }, 'incident_notice: post the incident notice'),
      { title: 'withdraw the incident notice', run: () => this.withdrawNotice() },
      // Say where it went: a notice only the worker's console saw reached no channel.
      (r) => (r.delivered === 'console' ? "post the incident notice: delivered to the worker's console only (no CHAT_WEBHOOK_URL, no Slack app), not to a channel" : 'post the incident notice'),
    );
  }

  private withdrawNotice(): Promise<unknown> {
    const dry = this.ctx.input.dryRun ? '[dry run] ' : '';
    const { incidentId, summary } = this.tracker.state;
    return this.tracker.deliver(
      { kind: 'incident_notice_withdrawn', incidentId, title: 'Incident notice withdrawn', text: `${dry}The incident notice "${chatInline(summary)}" is withdrawn: the incident was cancelled.` },
      'compensation: withdraw the incident notice',
    );
  }

  // -- steps recorded, steps by hand (journaled: a continued run does not record them twice) --------

  notAutomatedYet(step: string, what: string, details?: Record<string, unknown>): void {
    this.journal.onceSync('notAutomatedYet', () => {
      this.tracker.stepDone(step, 'not_automated', 'runbook', `${what} (not automated yet: do it by hand)`, details);
      this.tracker.attention(`${step} is not automated yet: ${what}`);
    });
  }

  notNeeded(step: string, why: string): void {
    this.journal.onceSync('notNeeded', () => this.tracker.stepDone(step, 'not_needed', 'runbook', why));
  }

  skipped(step: string, why: string): void {
    this.journal.onceSync('skipped', () => {
      this.tracker.stepDone(step, 'skipped', 'runbook', why);
      this.tracker.attention(`${step} skipped: ${why}`);
    });
  }

  byHand(step: ManualStep, instructions: string): Promise<boolean> {
    return this.journal.once('byHand', () => this.ctx.byHand(step, instructions));
  }

  // -- approvals and optional requests (their waits are safe points for continue-as-new) ----------

  approval(step: GatedStep, title: string): Promise<GateOutcome> {
    const requestedBy = this.optionalSteps.get(step)?.requester ?? this.tracker.state.reporter;
    return this.journal.once('approval', () => waitForApproval(this.tracker, { step, title, requestedBy, ...this.ctx.gateTimeouts(step), guard: this.guard }));
  }

  /**
   * How long an optional step may be asked for: the step's `decideWithin`. The undo of a verified
   * rollback holds a fixed incident open, so without its own setting it is offered for 15 minutes
   * at most, not the gates' hour.
   */
  private optionalWindow(step: GatedStep): number {
    const own = this.ctx.input.timeouts.steps[step]?.decideWithin;
    if (step === 'undo_rollback') return own ?? Math.min(UNDO_ROLLBACK_WINDOW_MS, this.ctx.input.timeouts.decideWithin);
    return this.ctx.gateTimeouts(step).decideWithin;
  }

  optionalRequest(step: GatedStep, what: string): Promise<StepRequest | undefined> {
    return this.journal.once('optionalRequest', async () => {
      const fromInput = this.ctx.input.targetedRevocation;
      if (step === 'targeted_revocation' && fromInput) {
        const req: StepRequest = { step, requester: this.tracker.state.reporter, userIds: fromInput.userIds, reason: 'in the incident input' };
        this.optionalSteps.fromInput(req, `requested in the incident input (${fromInput.userIds.length} user(s))`);
      }
      return this.optionalSteps.awaitRequest(step, what, this.optionalWindow(step));
    });
  }
}
