/**
 * `incidentWorkflow`: one incident from report to review. Triage classifies, the category's
 * playbook (incident-playbooks.ts) runs, dangerous steps wait for named approvers, and every
 * state change reaches the query, `setCurrentDetails` and the search attributes. Deterministic:
 * state lives in plain objects, all I/O happens in activities.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineUpdate,
  executeChild,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Notification, NotificationKind } from '../activities/notify';
import {
  CATEGORY_SEVERITY,
  CRITICAL_STEPS,
  describeIssues,
  formatDuration,
  incidentInputSchema,
  type GatedStep,
  type IncidentInput,
  type IncidentCategory,
  type IncidentStatus,
  type Severity,
  type StepOutcome,
  type TimelineEvent,
  type ValidIncidentInput,
} from '../domain';
import { IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey, NON_RETRYABLE_ERROR_TYPES } from '../shared';
import { classify, formatProbeReport, reconcile, type ProbeReport, type TriageVerdict } from '../triage/rules';
import {
  applyApproval,
  applyRejection,
  approvalsNeeded,
  approveRequestSchema,
  checkApproval,
  checkRejection,
  parseRequest,
  rejectRequestSchema,
  stepRequestSchema,
  UpdateRefused,
  type ApprovalGate,
  type ApproveRequest,
  type Decision,
  type GateOutcome,
  type RejectRequest,
  type StepRequest,
} from './incident-approvals';
import { PLAYBOOKS, type IncidentRun } from './incident-playbooks';
import { revokeSessionsWorkflow } from './revoke-sessions';
import type { RevocationScope } from './revoke-sessions';

export {
  approveRequestSchema,
  rejectRequestSchema,
  stepRequestSchema,
  type ApprovalGate,
  type ApproveRequest,
  type Decision,
  type RejectRequest,
  type StepRequest,
} from './incident-approvals';

/** Outcome of a playbook step: the runbook's outcomes, plus the honest "a human must do it". */
export type StepResult = StepOutcome | 'not_automated' | 'not_needed' | 'not_requested';

export interface StepRecord {
  step: string;
  outcome: StepResult;
  at: string;
  actor: string;
  note: string;
}

export interface PendingApproval {
  step: GatedStep;
  title: string;
  requestedBy: string;
  approvalsNeeded: number;
  approvedBy: string[];
  /** Who may still approve: listed, not the requester, not already approved. */
  eligible: string[];
  escalateAt: string;
  decideBy: string;
  escalated: boolean;
}

export interface IncidentState {
  incidentId: string;
  status: IncidentStatus;
  category?: IncidentCategory;
  severity?: Severity;
  reporter: string;
  summary: string;
  approvers: string[];
  dryRun: boolean;
  /** What the incident is waiting for right now, in a sentence (also in the UI's current details). */
  waitingFor: string;
  triage?: { agreement: TriageVerdict['agreement']; rule: string; note: string; probes: string[] };
  steps: StepRecord[];
  gates: ApprovalGate[];
  pendingApprovals: PendingApproval[];
  /** What a human must look at: disagreements, steps not automated, failed compensations. */
  attention: string[];
  timeline: TimelineEvent[];
}

// Messages: one JSON object per update (the UI's Send an Update form passes exactly one).
export const getIncidentState = defineQuery<IncidentState>('getIncidentState');
export const approveStep = defineUpdate<Decision, [ApproveRequest]>('approveStep');
export const rejectStep = defineUpdate<Decision, [RejectRequest]>('rejectStep');
export const requestStep = defineUpdate<{ step: GatedStep; requestedBy: string; message: string }, [StepRequest]>('requestStep');

/** Steps the playbook only runs when someone asks for them. */
const OPTIONAL_STEPS: Partial<Record<IncidentCategory, GatedStep[]>> = { session_issues: ['targeted_revocation'] };

const activities = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
});
const notifications = proxyActivities<Activities>({
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
});

const errorMessage = (err: unknown) => (err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err));

interface Compensation {
  step: string;
  title: string;
  run: () => Promise<unknown>;
}

class Incident implements IncidentRun {
  readonly state: IncidentState;
  private readonly undo: Compensation[] = [];
  private readonly requests = new Map<GatedStep, StepRequest>();
  private readonly openRequestWindows = new Set<GatedStep>();
  private readonly closedRequestWindows = new Set<GatedStep>();
  evidence: Record<string, unknown> = {};

  constructor(private readonly input: ValidIncidentInput) {
    this.state = {
      incidentId: workflowInfo().workflowId,
      status: 'triage',
      category: input.category,
      severity: input.category ? CATEGORY_SEVERITY[input.category] : undefined,
      reporter: input.reporter,
      summary: input.summary,
      approvers: input.approvers,
      dryRun: input.dryRun,
      waitingFor: 'triage: probing the Clerk status page, the Backend API, the health route and the app routes',
      steps: [],
      gates: [],
      pendingApprovals: [],
      attention: [],
      timeline: [],
    };
  }

  // -- state, timeline, UI ----------------------------------------------------------------------

  snapshot(): IncidentState {
    const open = this.state.status !== 'resolved' && this.state.status !== 'cancelled';
    this.state.pendingApprovals = open
      ? this.state.gates
          .filter((g) => !g.outcome)
          .map((g) => ({
            step: g.step,
            title: g.title,
            requestedBy: g.requestedBy,
            approvalsNeeded: g.approvalsNeeded,
            approvedBy: g.approvals.map((a) => a.approver),
            eligible: this.state.approvers.filter((a) => a !== g.requestedBy && !g.approvals.some((x) => x.approver === a)),
            escalateAt: g.escalateAt,
            decideBy: g.decideBy,
            escalated: g.escalated,
          }))
      : [];
    return this.state;
  }

  record(step: string, actor: string, description: string, details?: Record<string, unknown>): void {
    this.state.timeline.push({ time: new Date().toISOString(), step, actor, description, ...(details ? { details } : {}) });
  }

  private stepDone(step: string, outcome: StepResult, actor: string, note: string, details?: Record<string, unknown>): void {
    this.state.steps.push({ step, outcome, at: new Date().toISOString(), actor, note });
    this.record(step, actor, `${outcome}: ${note}`, { outcome, ...details });
  }

  private waitFor(what: string): void {
    this.state.waitingFor = what;
    this.publish();
  }

  publish(): void {
    const s = this.snapshot();
    const pending = s.pendingApprovals.map((p) => `${p.step} (${p.approvedBy.length}/${p.approvalsNeeded}, decide by ${p.decideBy})`);
    const last = s.timeline.at(-1);
    setCurrentDetails(
      [
        `**Incident:** ${s.summary}${s.dryRun ? ' (dry run)' : ''}`,
        `**Status:** ${s.status} · **Category:** ${s.category ?? 'unknown (triage decides)'} · **Severity:** ${s.severity ?? 'unknown'}`,
        `**Waiting for:** ${s.waitingFor}`,
        `**Pending approvals:** ${pending.length ? pending.join('; ') : 'none'}`,
        ...(s.attention.length ? [`**Needs attention:** ${s.attention.join('; ')}`] : []),
        ...(last ? [`**Last:** ${last.step}: ${last.description}`] : []),
      ].join('\n\n'),
    );
    upsertSearchAttributes([
      { key: IncidentStatusKey, value: s.status },
      ...(s.category ? [{ key: IncidentCategoryKey, value: s.category }] : []),
      ...(s.severity ? [{ key: IncidentSeverityKey, value: s.severity }] : []),
    ]);
  }

  setStatus(status: IncidentStatus): void {
    if (this.state.status === status) return;
    const from = this.state.status;
    this.state.status = status;
    this.record('status', 'runbook', `status ${from} → ${status}`);
    this.publish();
    this.notifyLater('status_changed', `Status: ${status}`, `Incident "${this.state.summary}" moved from ${from} to ${status}.`);
  }

  private attention(note: string): void {
    this.state.attention.push(note);
    this.publish();
  }

  // -- notifications ----------------------------------------------------------------------------

  private pendingNotifications: Promise<void>[] = [];

  /** Notify and never throw: a failed notification is recorded and needs attention. */
  async notify(kind: NotificationKind, title: string, text: string, step?: GatedStep): Promise<void> {
    const n: Notification = { kind, incidentId: this.state.incidentId, title, text, ...(step ? { step } : {}) };
    try {
      await notifications.notify.executeWithOptions({ summary: `notify: ${title}` }, [n]);
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.record('notify', 'runbook', `notification failed: ${title}: ${errorMessage(err)}`);
      this.attention(`notification "${title}" could not be delivered`);
    }
  }

  /** Status changes are sent in the background; the workflow awaits them before it ends. */
  private notifyLater(kind: NotificationKind, title: string, text: string): void {
    // Only a cancellation gets past notify(); a status message cut short by it is no loss.
    this.pendingNotifications.push(this.notify(kind, title, text).catch(() => undefined));
  }

  async flushNotifications(): Promise<void> {
    await Promise.all(this.pendingNotifications.splice(0));
  }

  // -- triage -----------------------------------------------------------------------------------

  async triage(): Promise<void> {
    const timeoutMs = this.input.timeouts.probe;
    this.publish();
    const report: ProbeReport = await activities.runTriageProbes.executeWithOptions(
      {
        summary: `triage: status page, Backend API, health route, app routes (${formatDuration(timeoutMs)} each)`,
        startToCloseTimeout: timeoutMs * 2 + 10_000,
        retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
      },
      [{ timeoutMs }],
    );
    const verdict = reconcile(this.input.category, classify(report));
    const probes = formatProbeReport(report);
    this.state.category = verdict.category;
    this.state.severity = verdict.severity;
    this.state.triage = { agreement: verdict.agreement, rule: verdict.classification.rule, note: verdict.note, probes };
    this.evidence = { rule: verdict.classification.rule, probes, health: report.health };
    this.record('triage', 'runbook', verdict.note, { agreement: verdict.agreement, rule: verdict.classification.rule, probes });
    if (verdict.agreement === 'disagreed') {
      this.attention(`triage disagrees with the reporter: ${verdict.note}`);
      this.notifyLater('needs_attention', 'Triage disagrees with the reporter', verdict.note);
    }
    this.publish();
  }

  // -- steps and their compensations ------------------------------------------------------------

  /**
   * Run a step that changes something; on success its compensation joins the undo list, which
   * cancelling the incident unwinds in reverse. A failed step is recorded and needs attention.
   */
  async apply(step: string, title: string, action: () => Promise<unknown>, undo?: { title: string; run: () => Promise<unknown> }): Promise<boolean> {
    this.waitFor(`${step}: ${title}`);
    try {
      const result = await action();
      this.stepDone(step, 'succeeded', 'runbook', title, { result });
      if (undo) this.undo.push({ step, ...undo });
      return true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.stepDone(step, 'failed', 'runbook', `${title}: ${errorMessage(err)}`);
      this.attention(`${step} failed: ${errorMessage(err)}`);
      return false;
    }
  }

  /** Cancellation: undo what was applied, last first. A failed undo is escalated to a human. */
  async compensate(): Promise<void> {
    while (this.undo.length) {
      const u = this.undo.pop() as Compensation;
      this.waitFor(`cancellation: ${u.title} (compensating ${u.step})`);
      try {
        await u.run();
        this.stepDone(u.step, 'compensated', 'runbook', u.title);
      } catch (err) {
        const note = `compensation of ${u.step} failed (${u.title}): ${errorMessage(err)}; a human must undo it`;
        this.stepDone(u.step, 'failed', 'runbook', note, { compensation: true });
        this.attention(note);
        await this.notify('needs_attention', `Compensation failed: ${u.step}`, note);
      }
    }
  }

  postIncidentNotice(): Promise<void> {
    const dry = this.input.dryRun ? '[dry run] ' : '';
    const text = `${dry}We are investigating an authentication incident: ${this.state.summary} (category ${this.state.category ?? 'unknown'}, severity ${this.state.severity ?? 'unknown'}).`;
    return this.apply(
      'incident_notice',
      'post the incident notice',
      () => notifications.notify.executeWithOptions({ summary: 'incident_notice: post the incident notice' }, [
        { kind: 'incident_notice', incidentId: this.state.incidentId, title: 'Incident notice', text },
      ]),
      {
        title: 'withdraw the incident notice',
        run: () =>
          notifications.notify.executeWithOptions({ summary: 'compensation: withdraw the incident notice' }, [
            { kind: 'incident_notice_withdrawn', incidentId: this.state.incidentId, title: 'Incident notice withdrawn', text: `${dry}The incident notice "${this.state.summary}" is withdrawn: the incident was cancelled.` },
          ]),
      },
    ).then(() => undefined);
  }

  notAutomatedYet(step: string, what: string, details?: Record<string, unknown>): void {
    this.stepDone(step, 'not_automated', 'runbook', `${what} (not automated yet: do it by hand)`, details);
    this.attention(`${step} is not automated yet: ${what}`);
  }

  notNeeded(step: string, why: string): void {
    this.stepDone(step, 'not_needed', 'runbook', why);
  }

  // -- approvals --------------------------------------------------------------------------------

  private gateTimeouts(step: GatedStep): { escalateAfter: number; decideWithin: number } {
    const own = this.input.timeouts.steps[step];
    return {
      escalateAfter: own?.escalateAfter ?? this.input.timeouts.escalateAfter,
      decideWithin: own?.decideWithin ?? this.input.timeouts.decideWithin,
    };
  }

  async approval(step: GatedStep, title: string): Promise<GateOutcome> {
    const t = this.gateTimeouts(step);
    // Date.now() in workflow code is Temporal's replay-safe clock (the time of the current workflow task).
    const now = Date.now();
    const gate: ApprovalGate = {
      step,
      title,
      critical: CRITICAL_STEPS.includes(step),
      approvalsNeeded: approvalsNeeded(step),
      requestedBy: this.requests.get(step)?.requester ?? this.state.reporter,
      requestedAt: new Date(now).toISOString(),
      escalateAt: new Date(now + t.escalateAfter).toISOString(),
      decideBy: new Date(now + t.decideWithin).toISOString(),
      escalated: false,
      approvals: [],
    };
    this.state.gates.push(gate);
    const who = `${gate.approvalsNeeded === 2 ? 'two different approvers' : 'one approver'} from [${this.state.approvers.join(', ')}], not ${gate.requestedBy}`;
    this.record(step, gate.requestedBy, `approval requested: ${title} (needs ${who})`, { decideBy: gate.decideBy });
    const eligible = this.state.approvers.filter((a) => a !== gate.requestedBy).length;
    if (eligible < gate.approvalsNeeded) {
      // Say so now rather than let the gate time out silently: the approver list is fixed at start.
      this.attention(`${step} cannot be approved: it needs ${gate.approvalsNeeded} approver(s) other than ${gate.requestedBy}, the incident lists ${eligible}; it will time out (not done)`);
    }
    this.waitFor(`approval of ${step} (${title}) by ${who}; escalation at ${gate.escalateAt}, safe default (not done) at ${gate.decideBy}`);
    await this.notify(
      'approval_requested',
      `Approval needed: ${step}`,
      `${gate.requestedBy} asks to ${title}. Needs ${who}. Escalates at ${gate.escalateAt}; without a decision by ${gate.decideBy} it is not done (timed_out).`,
      step,
    );

    const decided = () => gate.outcome !== undefined;
    if (!(await condition(decided, Math.max(1, now + t.escalateAfter - Date.now()), { summary: `approval of ${step}: escalate after ${formatDuration(t.escalateAfter)}` }))) {
      gate.escalated = true;
      this.record(step, 'runbook', `no decision after ${formatDuration(t.escalateAfter)}: escalated`);
      this.waitFor(`approval of ${step} (ESCALATED) by ${who}; safe default (not done) at ${gate.decideBy}`);
      await this.notify(
        'escalation',
        `Escalation: ${step} still needs a decision`,
        `Nobody decided "${title}" within ${formatDuration(t.escalateAfter)}. Without a decision by ${gate.decideBy} it is not done (timed_out).`,
        step,
      );
      const remaining = Math.max(1, now + t.decideWithin - Date.now());
      if (!(await condition(decided, remaining, { summary: `approval of ${step}: safe default (not done) after ${formatDuration(remaining)}` }))) {
        gate.outcome = 'timed_out';
        gate.decidedAt = new Date().toISOString();
      }
    }
    const outcome = gate.outcome as GateOutcome;
    const note =
      outcome === 'approved'
        ? `${title}: approved by ${gate.approvals.map((a) => a.approver).join(' and ')}`
        : outcome === 'rejected'
          ? `${title}: rejected by ${gate.rejection?.approver}: ${gate.rejection?.reason}`
          : `${title}: nobody decided within ${formatDuration(t.decideWithin)}; safe default, not done`;
    this.stepDone(step, outcome, outcome === 'timed_out' ? 'runbook' : (gate.rejection?.approver ?? gate.approvals.at(-1)?.approver ?? 'runbook'), note);
    if (outcome === 'timed_out') this.attention(`${step} timed out without a decision`);
    this.publish();
    this.notifyLater('status_changed', `${step}: ${outcome}`, note);
    return outcome;
  }

  validateApproval(raw: unknown): void {
    checkApproval(this.state.gates, this.state.approvers, parseRequest(approveRequestSchema, raw));
  }

  approve(raw: unknown): Decision {
    const req = parseRequest(approveRequestSchema, raw);
    const gate = checkApproval(this.state.gates, this.state.approvers, req);
    const decision = applyApproval(gate, req, new Date().toISOString());
    this.record(req.step, req.approver, decision.decision === 'approved' ? `approved${req.comment ? `: ${req.comment}` : ''}` : `approval ${decision.approvedBy.length} of ${decision.approvalsNeeded}${req.comment ? `: ${req.comment}` : ''}`);
    this.publish();
    return decision;
  }

  validateRejection(raw: unknown): void {
    checkRejection(this.state.gates, this.state.approvers, parseRequest(rejectRequestSchema, raw));
  }

  reject(raw: unknown): Decision {
    const req = parseRequest(rejectRequestSchema, raw);
    const gate = checkRejection(this.state.gates, this.state.approvers, req);
    const decision = applyRejection(gate, req, new Date().toISOString());
    this.record(req.step, req.approver, `rejected: ${req.reason}`);
    this.publish();
    return decision;
  }

  // -- optional steps ---------------------------------------------------------------------------

  validateStepRequest(raw: unknown): StepRequest {
    const req = parseRequest(stepRequestSchema, raw);
    const optional = this.state.category ? (OPTIONAL_STEPS[this.state.category] ?? []) : [];
    if (!optional.includes(req.step)) {
      throw new UpdateRefused(
        `update.step: ${req.step} cannot be requested in this incident (optional steps of ${this.state.category ?? 'an unclassified incident'}: ${optional.join(', ') || 'none'})`,
      );
    }
    if (this.requests.has(req.step)) throw new UpdateRefused(`update.step: ${req.step} was already requested by ${this.requests.get(req.step)?.requester}`);
    if (this.closedRequestWindows.has(req.step)) throw new UpdateRefused(`update.step: the window to request ${req.step} has closed`);
    if (req.requester !== this.state.reporter && !this.state.approvers.includes(req.requester)) {
      throw new UpdateRefused(`update.requester: ${req.requester} is neither the reporter nor on the approver list`);
    }
    if (req.step === 'targeted_revocation' && !req.userIds) throw new UpdateRefused('update.userIds: targeted_revocation needs the user ids whose sessions to end');
    return req;
  }

  requestOptionalStep(raw: unknown): { step: GatedStep; requestedBy: string; message: string } {
    const req = this.validateStepRequest(raw);
    this.requests.set(req.step, req);
    this.record(req.step, req.requester, `requested${req.reason ? `: ${req.reason}` : ''}`, { userIds: req.userIds ?? null });
    this.publish();
    return { step: req.step, requestedBy: req.requester, message: `${req.step} requested by ${req.requester}; it now needs an approval from someone else` };
  }

  async optionalRequest(step: GatedStep, what: string): Promise<StepRequest | undefined> {
    if (step === 'targeted_revocation' && this.input.targetedRevocation && !this.requests.has(step)) {
      const req: StepRequest = { step, requester: this.state.reporter, userIds: this.input.targetedRevocation.userIds, reason: 'in the incident input' };
      this.requests.set(step, req);
      this.record(step, req.requester, `requested in the incident input (${req.userIds?.length} user(s))`);
    }
    if (!this.requests.has(step)) {
      const window = this.gateTimeouts(step).decideWithin;
      this.openRequestWindows.add(step);
      this.waitFor(`an optional request to ${what} (update requestStep with step "${step}") until ${new Date(Date.now() + window).toISOString()}; otherwise none`);
      await condition(() => this.requests.has(step), window, { summary: `optional ${step}: wait ${formatDuration(window)} for a request` });
      this.openRequestWindows.delete(step);
    }
    this.closedRequestWindows.add(step);
    const req = this.requests.get(step);
    if (!req) this.stepDone(step, 'not_requested', 'runbook', `nobody asked to ${what}`);
    return req;
  }

  // -- monitoring and verification --------------------------------------------------------------

  async watchRecovery(): Promise<boolean> {
    const every = this.input.timeouts.recoveryCheckEvery;
    const maxChecks = Math.max(1, Math.ceil(this.input.timeouts.recoveryWatchFor / every));
    const probe = async (summary: string) => {
      try {
        const s = await activities.probeStatusPage.executeWithOptions({ summary }, [{ timeoutMs: this.input.timeouts.probe }]);
        return s.indicator;
      } catch (err) {
        if (isCancellation(err)) throw err;
        this.record('recovery_watch', 'runbook', `status page did not answer: ${errorMessage(err)}`);
        return 'unknown' as const;
      }
    };
    let indicator = await probe('monitoring: Clerk status page');
    let checks = 0;
    while (indicator !== 'none' && checks < maxChecks) {
      checks += 1;
      this.waitFor(`Clerk to recover (status page: ${indicator}); check ${checks} of ${maxChecks} in ${formatDuration(every)}`);
      await sleep(every, { summary: `monitoring: next Clerk status check (${checks}/${maxChecks})` });
      indicator = await probe(`monitoring: Clerk status page, check ${checks}`);
    }
    const recovered = indicator === 'none';
    if (recovered) this.stepDone('recovery_watch', 'succeeded', 'runbook', `Clerk recovered after ${checks} check(s)`, { checks, indicator });
    else {
      this.stepDone('recovery_watch', 'failed', 'runbook', `Clerk still reports ${indicator} after ${checks} checks; handing over to a human`, { checks, indicator });
      this.attention('Clerk has not recovered within the recovery watch');
      await this.notify('needs_attention', 'Clerk has not recovered', `The status page still reports ${indicator} after ${formatDuration(this.input.timeouts.recoveryWatchFor)}.`);
    }
    return recovered;
  }

  async verifyFix(step: string): Promise<boolean> {
    this.waitFor(`${step}: probing again to verify the fix`);
    const timeoutMs = this.input.timeouts.probe;
    const report = await activities.runTriageProbes.executeWithOptions(
      { summary: `${step}: probe again (${formatDuration(timeoutMs)} each)`, startToCloseTimeout: timeoutMs * 2 + 10_000 },
      [{ timeoutMs }],
    );
    const seen = classify(report);
    const fixed = seen.category !== this.state.category;
    const probes = formatProbeReport(report);
    if (fixed) this.stepDone(step, 'succeeded', 'runbook', `the probes no longer see ${this.state.category} (${seen.reason})`, { probes });
    else {
      this.stepDone(step, 'failed', 'runbook', `the probes still see ${this.state.category}: ${seen.reason}`, { probes });
      this.attention(`${step}: the fix did not take (${seen.reason})`);
    }
    return fixed;
  }

  // -- session revocation -----------------------------------------------------------------------

  async revokeSessions(step: GatedStep, scope: RevocationScope): Promise<void> {
    const gate = [...this.state.gates].reverse().find((g) => g.step === step);
    const approvedBy = gate?.approvals.map((a) => a.approver).join(' and ') ?? 'nobody';
    const what = scope.type === 'all' ? 'every active session' : scope.type === 'users' ? `the sessions of ${scope.userIds.length} user(s)` : 'sessions';
    const childId = `${this.state.incidentId}-${step}`;
    this.waitFor(`${step}: revoking ${what}${this.input.dryRun ? ' (dry run)' : ''} in child workflow ${childId}`);
    try {
      const result = await executeChild(revokeSessionsWorkflow, {
        workflowId: childId,
        args: [
          {
            scope,
            dryRun: this.input.dryRun,
            requestedBy: gate?.requestedBy ?? this.state.reporter,
            reason: `incident ${this.state.incidentId} (${this.state.category}): ${this.state.summary}; approved by ${approvedBy}`,
            incidentId: this.state.incidentId,
          },
        ],
        staticSummary: `${step}: revoke ${what}${this.input.dryRun ? ' (dry run)' : ''} for incident ${this.state.incidentId}`,
      });
      const t = result.totals;
      const note = result.dryRun
        ? `dry run: ${t.sessionsFound} active session(s) would be revoked; nothing was revoked`
        : `${t.sessionsRevoked} session(s) revoked, ${t.sessionsAlreadyRevoked} already ended, ${t.failures} failure(s)`;
      const details = { childWorkflowId: childId, dryRun: result.dryRun, totals: t };
      if (t.failures > 0) {
        this.stepDone(step, 'failed', 'runbook', note, details);
        this.attention(`${step}: ${t.failures} session(s) could not be revoked (see ${childId})`);
      } else this.stepDone(step, 'succeeded', 'runbook', note, details);
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.stepDone(step, 'failed', 'runbook', `revocation workflow ${childId} failed: ${errorMessage(err)}`, { childWorkflowId: childId });
      this.attention(`${step} failed: ${errorMessage(err)}`);
    }
  }

  // -- close ------------------------------------------------------------------------------------

  async resolve(): Promise<void> {
    this.state.waitingFor = 'nothing: incident closed';
    this.setStatus('resolved');
    this.record('close', 'runbook', this.state.attention.length ? `incident closed; ${this.state.attention.length} item(s) need a human` : 'incident closed');
    this.publish();
    await this.flushNotifications();
  }

  async cancel(): Promise<void> {
    this.record('cancel', 'runbook', 'incident cancelled: running the compensations of the steps already applied');
    await this.compensate();
    this.state.waitingFor = 'nothing: incident cancelled';
    this.setStatus('cancelled');
    await this.flushNotifications();
  }
}

/** A validator whose refusals reach the caller as non-retryable `UpdateRefused` failures. */
function refusing<T>(check: (req: T) => void): (req: T) => void {
  return (req) => {
    try {
      check(req);
    } catch (err) {
      if (err instanceof UpdateRefused) throw ApplicationFailure.create({ type: 'UpdateRefused', message: err.message, nonRetryable: true });
      throw err;
    }
  };
}

export async function incidentWorkflow(rawInput: IncidentInput): Promise<IncidentState> {
  const parsed = incidentInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    throw ApplicationFailure.create({ type: 'InvalidIncidentInput', message: describeIssues(parsed.error), nonRetryable: true });
  }
  const input = parsed.data;
  const incident = new Incident(input);

  setHandler(getIncidentState, () => incident.snapshot());
  setHandler(approveStep, (req) => incident.approve(req), { validator: refusing((req) => incident.validateApproval(req)) });
  setHandler(rejectStep, (req) => incident.reject(req), { validator: refusing((req) => incident.validateRejection(req)) });
  setHandler(requestStep, (req) => incident.requestOptionalStep(req), {
    validator: refusing((req) => void incident.validateStepRequest(req)),
  });

  incident.record('report', input.reporter, `incident reported: ${input.summary}`, { category: input.category ?? null, dryRun: input.dryRun });
  incident.publish();

  try {
    await incident.triage();
    const category = incident.state.category;
    if (category) {
      await PLAYBOOKS[category](incident);
    } else {
      incident.record('close', 'runbook', 'no category named and none seen: nothing to run. Start a new incident with a category if users still report trouble');
    }
    await incident.resolve();
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => incident.cancel());
    }
    throw err;
  }
  return incident.snapshot();
}
