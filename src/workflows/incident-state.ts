/**
 * The incident's state and how it is seen: the timeline, the query answer, the UI's current
 * details and search attributes, and the chat notifications. Workflow code: every change goes
 * through `IncidentTracker` so the UI, the query and the channel never disagree.
 */
import { isCancellation, proxyActivities, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { NotifyActivities } from '../activities';
import type { Notification, NotificationKind, NotifyResult } from '../activities/notify';
import { categorySeverity, type GatedStep, type IncidentStatus, type ManualStep, type ValidIncidentInput } from '../domain';
import { IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey, NON_RETRYABLE_ERROR_TYPES } from '../shared';
import { chatInline } from '../render-safe';
import type { ApprovalGate, IncidentState, PendingApproval, StepResult } from './incident-types';
import { bypassLine } from './bypass-record';
import { eligibleApprovers } from './incident-roster';
import { Pager } from './incident-paging';

export const notifications = proxyActivities<NotifyActivities>({
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
});

export const errorMessage = (err: unknown) =>
  err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err);

function pendingApproval(gate: ApprovalGate, state: IncidentState): PendingApproval {
  const approvers = state.approvers;
  const approvedBy = gate.approvals.map((a) => a.approver);
  return {
    step: gate.step,
    title: gate.title,
    requestedBy: gate.requestedBy,
    approvalsNeeded: gate.approvalsNeeded,
    approvedBy,
    eligible: state.roster ? eligibleApprovers(state, gate) : approvers.filter((a) => a !== gate.requestedBy && !approvedBy.includes(a)),
    escalateAt: gate.escalateAt,
    decideBy: gate.decideBy,
    escalated: gate.escalated,
    ...(gate.nonce ? { nonce: gate.nonce, signatureRequired: gate.signatureRequired === true } : {}),
  };
}

/** Steps whose success changes production: each is a PagerDuty change event. */
const MITIGATIONS: ReadonlySet<string> = new Set<GatedStep>(['emergency_bypass', 'rotate_secret_key', 'revoke_all_sessions', 'targeted_revocation', 'bypass_off', 'rollback']);
const isMitigation = (step: string): step is GatedStep => MITIGATIONS.has(step);

/** Outcomes that count as done when the runbook checks whether the incident is fixed. */
const DONE: readonly StepResult[] = ['succeeded', 'done_by_hand'];

/**
 * What keeps the incident from `resolved`: a step that fixes it (`fixedWhen`) not done, a step by
 * hand not confirmed, a step failed or partial, a dry run. Empty when the runbook verified it all.
 */
export function openItems(state: Pick<IncidentState, 'steps' | 'manualSteps'>, fixedWhen: readonly string[], dryRun: boolean): string[] {
  const last = new Map(state.steps.map((s) => [s.step, s]));
  const items = new Map<string, string>(); // by step: each is listed once, first reason wins
  const add = (step: string, text: string) => void (items.has(step) || items.set(step, text));
  if (dryRun) add('dry_run', 'dry run: nothing was changed');
  for (const step of fixedWhen) {
    const outcome = last.get(step)?.outcome;
    if (!outcome || !DONE.includes(outcome)) add(step, `${step} not done (${outcome ?? 'never ran'})`);
  }
  for (const m of state.manualSteps) {
    if (m.outcome !== 'done_by_hand') add(m.step, `${m.step} not confirmed as done by hand`);
  }
  for (const [step, s] of last) {
    if ((s.outcome === 'failed' || s.outcome === 'partial') && step !== 'incident_notice') add(step, `${step} ${s.outcome}: ${s.note}`);
  }
  return [...items.values()];
}

/** The incident's state, its timeline and its voice (UI, search attributes, chat). */
export class IncidentTracker {
  readonly state: IncidentState;
  private pendingNotifications: Promise<void>[] = [];
  /** The notification that is opening the incident's Slack thread: the next ones wait for it, so there is one thread. */
  private openingThread: Promise<unknown> | undefined;
  /** A notification went out with no thread (a webhook or the console, no Slack app): nothing waits for one. */
  private threadless = false;
  /** Pages to the on-call, from the roster the incident recorded (incident-paging.ts). */
  readonly pager: Pager = new Pager(this);

  /** `carried`: the state a previous run of this incident handed over (continue-as-new). */
  constructor(input: ValidIncidentInput, carried?: IncidentState) {
    this.state = carried ?? {
      incidentId: workflowInfo().workflowId,
      status: 'triage',
      category: input.category,
      severity: input.category ? categorySeverity(input.category) : undefined,
      reporter: input.reporter,
      summary: input.summary,
      approvers: input.approvers,
      dryRun: input.dryRun,
      waitingFor: 'triage: probing the Clerk status page, the Backend API, the health route and the app routes',
      steps: [],
      gates: [],
      pendingApprovals: [],
      manualSteps: [],
      openItems: [],
      attention: [],
      timeline: [],
    };
  }

  snapshot(): IncidentState {
    const open = this.state.status !== 'resolved' && this.state.status !== 'cancelled';
    this.state.pendingApprovals = open
      ? this.state.gates.filter((g) => !g.outcome).map((g) => pendingApproval(g, this.state))
      : [];
    return this.state;
  }

  record(step: string, actor: string, description: string, details?: Record<string, unknown>): void {
    this.state.timeline.push({ time: new Date().toISOString(), step, actor, description, ...(details ? { details } : {}) });
  }

  stepDone(step: string, outcome: StepResult, actor: string, note: string, details?: Record<string, unknown>): void {
    this.state.steps.push({ step, outcome, at: new Date().toISOString(), actor, note });
    this.record(step, actor, `${outcome}: ${note}`, { outcome, ...details });
    // A mitigation applied is a change event on the on-call's service.
    if (outcome === 'succeeded' && isMitigation(step)) this.pager.change(step, note);
  }

  /** The runbook's step failed: recorded, and in the attention list as `<step> failed: <note>`. */
  stepFailed(step: string, note: string, details?: Record<string, unknown>): void {
    this.stepDone(step, 'failed', 'runbook', note, details);
    this.attention(`${step} failed: ${note}`);
  }

  waitFor(what: string): void {
    this.state.waitingFor = what;
    this.publish();
  }

  attention(note: string): void {
    this.state.attention.push(note);
    this.publish();
  }

  publish(): void {
    const s = this.snapshot();
    const pending = s.pendingApprovals.map((p) => `${p.step} (${p.approvedBy.length}/${p.approvalsNeeded}, decide by ${p.decideBy})`);
    const byHand = s.manualSteps.filter((m) => !m.outcome).map((m) => `${m.step} (confirm by ${m.confirmBy})`);
    const last = s.timeline.at(-1);
    setCurrentDetails(
      [
        `**Incident:** ${s.summary}${s.dryRun ? ' (dry run)' : ''}`,
        `**Status:** ${s.status} · **Category:** ${s.category ?? 'unknown (triage decides)'} · **Severity:** ${s.severity ?? 'unknown'}`,
        `**Waiting for:** ${s.waitingFor}`,
        `**Pending approvals:** ${pending.length ? pending.join('; ') : 'none'}`,
        ...(byHand.length ? [`**To do by hand:** ${byHand.join('; ')}`] : []),
        ...(s.bypass ? [`**Emergency auth bypass:** ${bypassLine(s.bypass)}`] : []),
        ...(s.openItems.length ? [`**Still open:** ${s.openItems.join('; ')}`] : []),
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

  /** `why`, when given, is said in the timeline and the channel (e.g. what is still open). */
  setStatus(status: IncidentStatus, why?: string): void {
    if (this.state.status === status) return;
    const from = this.state.status;
    this.state.status = status;
    this.record('status', 'runbook', `status ${from} → ${status}${why ? `: ${why}` : ''}`);
    this.publish();
    this.notifyLater('status_changed', `Status: ${status}`, `Incident "${this.state.summary}" moved from ${from} to ${status}.${why ? ` ${why}` : ''}`);
  }

  /** The thread's first message in the Slack app's channel: the incident as it stands, one line each. */
  chatStatus(): string[] {
    const s = this.snapshot();
    const pending = s.pendingApprovals.map((p) => `${p.step} (${p.approvedBy.length}/${p.approvalsNeeded}, decide by ${p.decideBy})`);
    const byHand = s.manualSteps.filter((m) => !m.outcome).map((m) => `${m.step} (confirm by ${m.confirmBy})`);
    return [
      chatInline(`Incident: ${s.summary}${s.dryRun ? ' (dry run)' : ''}`),
      `Status: ${s.status} · Category: ${s.category ?? 'unknown (triage decides)'} · Severity: ${s.severity ?? 'unknown'} · Reporter: ${chatInline(s.reporter)}`,
      chatInline(`Waiting for: ${s.waitingFor}`),
      `Pending approvals: ${pending.length ? pending.join('; ') : 'none'}`,
      ...(byHand.length ? [`To do by hand: ${byHand.join('; ')}`] : []),
      ...(s.bypass ? [chatInline(`Emergency auth bypass: ${bypassLine(s.bypass)}`)] : []),
      ...(s.openItems.length ? [chatInline(`Still open: ${s.openItems.join('; ')}`)] : []),
      ...(s.attention.length ? [chatInline(`Needs attention: ${s.attention.slice(-5).join('; ')}`)] : []),
    ];
  }

  /** What an approver needs to decide a gate: triage's verdict, the diagnostics, the rollback candidate (one line each). */
  evidence(): string[] {
    const { triage, steps, timeline } = this.state;
    const diagnostics = steps.filter((st) => st.step === 'diagnostics').at(-1);
    const candidate = timeline.filter((e) => e.step === 'rollback' && typeof e.details?.candidateDeploymentId === 'string').at(-1);
    return [
      ...(triage ? [`Triage: ${triage.agreement} by rule ${triage.rule}: ${triage.note}`, ...triage.probes.slice(0, 4).map((p) => `Probe: ${p}`)] : []),
      ...(diagnostics ? [`Diagnostics: ${diagnostics.note}`] : []),
      ...(candidate ? [`Rollback: ${candidate.description}`] : []),
    ].map((l) => chatInline(l.length > 500 ? `${l.slice(0, 499)}…` : l));
  }

  /**
   * Send a notification, in the incident's Slack thread when there is one (its first message shows
   * `chatStatus`); the notification that opens the thread is awaited by the next ones. Throws what the activity throws.
   */
  async deliver(n: Omit<Notification, 'thread' | 'status'>, summary: string): Promise<NotifyResult> {
    // Whoever waited on an opening that failed opens the thread itself; the others wait for that one.
    while (!this.state.chat && !this.threadless && this.openingThread) {
      const opening = this.openingThread;
      await opening;
      if (this.openingThread === opening && !this.state.chat) this.openingThread = undefined;
    }
    const sent = notifications.notify.executeWithOptions({ summary }, [{ ...n, ...(this.state.chat ? { thread: this.state.chat } : {}), status: this.chatStatus() }]);
    const kept = sent.then((r) => {
      if (r.thread && !this.state.chat) this.state.chat = { channel: r.thread.channel, ts: r.thread.ts };
      if (!r.thread) this.threadless = true;
    });
    if (!this.state.chat && !this.threadless) this.openingThread = kept.catch(() => undefined);
    await kept;
    return sent;
  }

  /**
   * Notify and never throw: a failed notification is recorded and needs attention. `text` is the
   * body's lines (one string: one line); text from input in a line cannot break it (chatInline).
   */
  async notify(kind: NotificationKind, title: string, text: string | readonly string[], step?: GatedStep | ManualStep, extra?: Pick<Notification, 'signed' | 'evidence' | 'review' | 'gateRequestedAt'>): Promise<void> {
    const body = (typeof text === 'string' ? [text] : text).map((l) => chatInline(l)).join('\n');
    const n: Notification = { kind, incidentId: this.state.incidentId, title, text: body, ...(step ? { step } : {}), ...extra };
    try {
      await this.deliver(n, `notify: ${title}`);
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.record('notify', 'runbook', `notification failed: ${title}: ${errorMessage(err)}`);
      this.attention(`notification "${title}" could not be delivered`);
    }
  }

  /** Status changes are sent in the background; the workflow awaits them before it ends. */
  notifyLater(kind: NotificationKind, title: string, text: string | readonly string[]): void {
    // Only a cancellation gets past notify(); a status message cut short by it is no loss.
    this.pendingNotifications.push(this.notify(kind, title, text).catch(() => undefined));
  }

  async flushNotifications(): Promise<void> {
    await Promise.all(this.pendingNotifications.splice(0));
    await this.pager.flush();
  }
}
