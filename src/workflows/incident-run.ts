/**
 * The steps a playbook can take (`IncidentRun`), over the incident's tracker: triage, reversible
 * steps and their compensations, approvals, optional requests, the recovery watch, verification
 * and the revocation child workflow. Each step records its outcome; none throws but cancellation.
 * One concern, the step vocabulary of the playbooks (`IncidentRun`), hence a little over 400 lines.
 */
import { executeChild, isCancellation, proxyActivities, sleep } from '@temporalio/workflow';
import type { DiagnosticsActivities, ReviewActivities, TriageActivities } from '../activities';
import { formatDuration, type GatedStep, type ManualStep, type ValidIncidentInput } from '../domain';
import type { RevocationScope } from './revoke-sessions';
import { INCIDENT_COMMANDS, NON_RETRYABLE_ERROR_TYPES } from '../shared';
import { checkLine, type Check, type DiagnosticKind, type DiagnosticsSummary } from '../diagnostics/rules';
import type { Review } from '../review/build';
import { classify, formatProbeReport, reconcile, type ProbeReport } from '../triage/rules';
import { waitForApproval } from './incident-approvals';
import type { GateOutcome, StepRequest } from './incident-types';
import { ManualSteps, OptionalSteps, Resolution } from './incident-requests';
import type { IncidentRun } from './incident-playbooks';
import { errorMessage, IncidentTracker, notifications, openItems } from './incident-state';
import { describeScope, revokeSessionsWorkflow } from './revoke-sessions';
import { KeyRotationInbox, rotateSecretKey } from './incident-rotation';
import { EmergencyBypass } from './incident-bypass';
import { reconcileUsersStep } from './incident-reconcile';

const activities = proxyActivities<TriageActivities & DiagnosticsActivities & ReviewActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
});

interface Compensation {
  step: string;
  title: string;
  run: () => Promise<unknown>;
}

/** The first ids of a list, and how many more there are: `user_a, user_b and 3 more`. */
function listIds(ids: readonly string[], total: number, shown = 20): string {
  const head = ids.slice(0, shown).join(', ');
  return total > Math.min(ids.length, shown) ? `${head} and ${total - Math.min(ids.length, shown)} more` : head;
}

export class Incident implements IncidentRun {
  readonly tracker: IncidentTracker;
  readonly optionalSteps: OptionalSteps;
  readonly manualSteps: ManualSteps;
  readonly resolution: Resolution;
  /** `provideNewKey` and `confirmOldKeyDeleted` (the key rotation). */
  readonly keyRotation: KeyRotationInbox;
  private readonly undo: Compensation[] = [];

  /** The post-incident review, once written (the `getReview` query). */
  review?: { markdown: string; review: Review };
  /** The emergency auth bypass of a Clerk outage (incident-bypass.ts; `extendBypass` goes to it). */
  readonly bypass: EmergencyBypass;
  bypassAutomated = false;

  constructor(private readonly input: ValidIncidentInput) {
    this.tracker = new IncidentTracker(input);
    this.optionalSteps = new OptionalSteps(this.tracker);
    this.manualSteps = new ManualSteps(this.tracker);
    this.resolution = new Resolution(this.tracker);
    this.keyRotation = new KeyRotationInbox(this.tracker);
    this.bypass = new EmergencyBypass(this.tracker, input);
  }

  /** The users named as affected; the users of a targeted revocation in the input otherwise. */
  get affectedUserIds(): readonly string[] {
    return this.input.affectedUserIds.length ? this.input.affectedUserIds : (this.input.targetedRevocation?.userIds ?? []);
  }

  private get state() {
    return this.tracker.state;
  }

  // -- triage -----------------------------------------------------------------------------------

  async triage(): Promise<void> {
    const timeoutMs = this.input.timeouts.probe;
    this.tracker.publish();
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
    this.tracker.record('triage', 'runbook', verdict.note, { agreement: verdict.agreement, rule: verdict.classification.rule, probes });
    if (verdict.agreement === 'disagreed') {
      this.tracker.attention(`triage disagrees with the reporter: ${verdict.note}`);
      this.tracker.notifyLater('needs_attention', 'Triage disagrees with the reporter', verdict.note);
    }
    this.tracker.publish();
  }

  // -- steps and their compensations ------------------------------------------------------------

  /**
   * Run a step that changes something; on success its compensation joins the undo list, which
   * cancelling the incident unwinds in reverse. A failed step is recorded and needs attention.
   */
  async apply<T>(
    step: string,
    title: string,
    action: () => Promise<T>,
    undo?: { title: string; run: () => Promise<unknown> },
    describe: (result: T) => string = () => title,
  ): Promise<boolean> {
    this.tracker.waitFor(`${step}: ${title}`);
    try {
      const result = await action();
      this.tracker.stepDone(step, 'succeeded', 'runbook', describe(result), { result });
      if (undo) this.undo.push({ step, ...undo });
      return true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.tracker.stepDone(step, 'failed', 'runbook', `${title}: ${errorMessage(err)}`);
      this.tracker.attention(`${step} failed: ${errorMessage(err)}`);
      return false;
    }
  }

  /** Cancellation: undo what was applied, last first. A failed undo is escalated to a human. */
  async compensate(): Promise<void> {
    while (this.undo.length) {
      const u = this.undo.pop() as Compensation;
      this.tracker.waitFor(`cancellation: ${u.title} (compensating ${u.step})`);
      try {
        await u.run();
        this.tracker.stepDone(u.step, 'compensated', 'runbook', u.title);
      } catch (err) {
        const note = `compensation of ${u.step} failed (${u.title}): ${errorMessage(err)}; a human must undo it`;
        this.tracker.stepDone(u.step, 'failed', 'runbook', note, { compensation: true });
        this.tracker.attention(note);
        await this.tracker.notify('needs_attention', `Compensation failed: ${u.step}`, note);
      }
    }
  }

  /** Reversible: announce the incident in the channel; cancelling the incident withdraws it. */
  async postIncidentNotice(): Promise<void> {
    const dry = this.input.dryRun ? '[dry run] ' : '';
    const { incidentId, summary } = this.state;
    const text = `${dry}We are investigating an authentication incident: ${summary} (category ${this.state.category ?? 'unknown'}, severity ${this.state.severity ?? 'unknown'}).`;
    await this.apply(
      'incident_notice',
      'post the incident notice',
      () => notifications.notify.executeWithOptions({ summary: 'incident_notice: post the incident notice' }, [
        { kind: 'incident_notice', incidentId, title: 'Incident notice', text },
      ]),
      {
        title: 'withdraw the incident notice',
        run: () =>
          notifications.notify.executeWithOptions({ summary: 'compensation: withdraw the incident notice' }, [
            { kind: 'incident_notice_withdrawn', incidentId, title: 'Incident notice withdrawn', text: `${dry}The incident notice "${summary}" is withdrawn: the incident was cancelled.` },
          ]),
      },
      // Say where it went: a notice only the worker's console saw reached no channel.
      (r) => (r.delivered === 'console' ? "post the incident notice: delivered to the worker's console only (no CHAT_WEBHOOK_URL), not to a channel" : 'post the incident notice'),
    );
  }

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
    // The incident's own gate timeouts; `timeouts.steps` overrides are for the approval gates.
    const { escalateAfter, decideWithin } = this.input.timeouts;
    return this.manualSteps.byHand({ step, instructions, escalateAfter, decideWithin });
  }

  rotateSecretKey(): Promise<boolean> {
    const byHand = () => this.byHand('rotate_secret_key', 'add a new secret key in the Clerk dashboard, redeploy with it, verify, delete the old key');
    const { escalateAfter, decideWithin } = this.gateTimeouts('rotate_secret_key');
    const reported = Date.parse(this.state.timeline[0]?.time ?? new Date().toISOString());
    const exposedAt = this.input.exposedAt ? Date.parse(this.input.exposedAt) : reported;
    return rotateSecretKey({ tracker: this.tracker, inbox: this.keyRotation, escalateAfter, decideWithin, exposedAt, byHand, dryRun: this.input.dryRun });
  }

  // -- approvals and optional requests ----------------------------------------------------------

  private gateTimeouts(step: GatedStep): { escalateAfter: number; decideWithin: number } {
    const own = this.input.timeouts.steps[step];
    return {
      escalateAfter: own?.escalateAfter ?? this.input.timeouts.escalateAfter,
      decideWithin: own?.decideWithin ?? this.input.timeouts.decideWithin,
    };
  }

  approval(step: GatedStep, title: string): Promise<GateOutcome> {
    const requestedBy = this.optionalSteps.get(step)?.requester ?? this.state.reporter;
    return waitForApproval(this.tracker, { step, title, requestedBy, ...this.gateTimeouts(step) });
  }

  async optionalRequest(step: GatedStep, what: string): Promise<StepRequest | undefined> {
    const fromInput = this.input.targetedRevocation;
    if (step === 'targeted_revocation' && fromInput) {
      const req: StepRequest = { step, requester: this.state.reporter, userIds: fromInput.userIds, reason: 'in the incident input' };
      this.optionalSteps.fromInput(req, `requested in the incident input (${fromInput.userIds.length} user(s))`);
    }
    return this.optionalSteps.awaitRequest(step, what, this.gateTimeouts(step).decideWithin);
  }

  // -- diagnostics ------------------------------------------------------------------------------

  /**
   * The runbook's error-handling table as checks (clock skew, keys, domains, authorized parties,
   * session lifetime, middleware and SDK), each bounded; the verdicts go to the timeline, the
   * details and the channel. Undefined when they could not run.
   */
  async diagnose(kind: DiagnosticKind, userIds?: string[]): Promise<{ summary: DiagnosticsSummary; checks: Check[] } | undefined> {
    const timeoutMs = this.input.timeouts.probe;
    this.tracker.waitFor(`diagnostics: ${kind} checks (${formatDuration(timeoutMs)} each)`);
    try {
      const report = await activities.runDiagnostics.executeWithOptions(
        { summary: `diagnostics: ${kind} checks (${formatDuration(timeoutMs)} each)`, startToCloseTimeout: timeoutMs * 3 + 10_000 },
        [{ kind, timeoutMs, ...(userIds?.length ? { userIds } : {}) }],
      );
      const { summary, checks } = report;
      const findings = checks.filter((c) => c.verdict === 'warn' || c.verdict === 'fail').map(checkLine);
      this.tracker.stepDone('diagnostics', 'succeeded', 'runbook', `${summary.verdict}: ${summary.text}`, { verdict: summary.verdict, cause: summary.cause, checks: checks.map(checkLine) });
      if (summary.verdict !== 'ok') {
        this.tracker.attention(`diagnostics: ${summary.text}`);
        await this.tracker.notify('needs_attention', `Diagnostics: ${summary.verdict}`, [summary.text, ...findings].join('\n'));
      }
      return { summary, checks };
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.tracker.stepDone('diagnostics', 'failed', 'runbook', `diagnostics could not run: ${errorMessage(err)}`);
      this.tracker.attention(`diagnostics failed: ${errorMessage(err)}`);
      return undefined;
    }
  }

  // -- emergency auth bypass --------------------------------------------------------------------

  async bypassOn(): Promise<boolean | undefined> {
    const on = await this.bypass.turnOn((title, run) => this.undo.push({ step: 'emergency_bypass', title, run }));
    this.bypassAutomated = on !== undefined;
    return on;
  }

  async watchWhileBypassed(): Promise<void> {
    const recovered = this.bypass.active ? await this.bypass.watchThenOff() : false;
    // Off and verified: nothing left for a cancellation to undo.
    if (this.bypass.record?.state === 'off') this.undo.splice(0, this.undo.length, ...this.undo.filter((u) => u.step !== 'emergency_bypass'));
    if (!recovered) await this.watchRecovery();
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
        this.tracker.record('recovery_watch', 'runbook', `status page did not answer: ${errorMessage(err)}`);
        return 'unknown' as const;
      }
    };
    let indicator = await probe('monitoring: Clerk status page');
    let checks = 0;
    while (indicator !== 'none' && checks < maxChecks) {
      checks += 1;
      this.tracker.waitFor(`Clerk to recover (status page: ${indicator}); check ${checks} of ${maxChecks} in ${formatDuration(every)}`);
      await sleep(every, { summary: `monitoring: next Clerk status check (${checks}/${maxChecks})` });
      indicator = await probe(`monitoring: Clerk status page, check ${checks}`);
    }
    const recovered = indicator === 'none';
    if (recovered) this.tracker.stepDone('recovery_watch', 'succeeded', 'runbook', `Clerk recovered after ${checks} check(s)`, { checks, indicator });
    else {
      this.tracker.stepDone('recovery_watch', 'failed', 'runbook', `Clerk still reports ${indicator} after ${checks} checks; handing over to a human`, { checks, indicator });
      this.tracker.attention('Clerk has not recovered within the recovery watch');
      await this.tracker.notify('needs_attention', 'Clerk has not recovered', `The status page still reports ${indicator} after ${formatDuration(this.input.timeouts.recoveryWatchFor)}.`);
    }
    return recovered;
  }

  async verifyFix(step: string): Promise<boolean> {
    this.tracker.waitFor(`${step}: probing again to verify the fix`);
    const timeoutMs = this.input.timeouts.probe;
    const report = await activities.runTriageProbes.executeWithOptions(
      { summary: `${step}: probe again (${formatDuration(timeoutMs)} each)`, startToCloseTimeout: timeoutMs * 2 + 10_000 },
      [{ timeoutMs }],
    );
    const seen = classify(report);
    // Verified means every probe ran and passed: another failure (an outage masks the app's
    // symptoms) or a probe that could not run verifies nothing.
    const fixed = seen.rule === 'all_clear';
    const probes = formatProbeReport(report);
    if (fixed) this.tracker.stepDone(step, 'succeeded', 'runbook', `the probes no longer see ${this.state.category} (${seen.reason})`, { probes });
    else {
      const why = seen.category === this.state.category ? `the probes still see ${this.state.category}` : `could not verify the fix: ${seen.rule}`;
      this.tracker.stepDone(step, 'failed', 'runbook', `${why}: ${seen.reason}`, { probes });
      this.tracker.attention(`${step}: the fix did not take (${seen.reason})`);
    }
    return fixed;
  }

  // -- session revocation -----------------------------------------------------------------------

  async revokeSessions(step: GatedStep, scope: RevocationScope): Promise<void> {
    const gate = [...this.state.gates].reverse().find((g) => g.step === step);
    const approvedBy = gate?.approvals.map((a) => a.approver).join(' and ') ?? 'nobody';
    const what = `the sessions of ${describeScope(scope)}`;
    const dry = this.input.dryRun ? ' (dry run)' : '';
    const childId = `${this.state.incidentId}-${step}`;
    this.tracker.waitFor(`${step}: revoking ${what}${dry} in child workflow ${childId}`);
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
            ...(this.input.excludeUserIds.length ? { excludeUserIds: this.input.excludeUserIds } : {}),
          },
        ],
        staticSummary: `${step}: revoke ${what}${dry} for incident ${this.state.incidentId}`,
      });
      const t = result.totals;
      const { outcome, notFoundUserIds: notFound } = result;
      const failedUsers = [...new Set(result.failures.map((f) => f.userId))];
      const done = result.dryRun
        ? `dry run: ${t.sessionsFound} active session(s) would be revoked; nothing was revoked`
        : `${t.sessionsRevoked} session(s) revoked, ${t.sessionsAlreadyRevoked} already ended, ${t.failures} failure(s)`;
      const missing = [
        ...(t.usersNotFound ? [`${t.usersNotFound} user(s) not found: ${listIds(notFound, t.usersNotFound)}`] : []),
        ...(failedUsers.length ? [`failed for ${listIds(failedUsers, failedUsers.length + result.failuresDropped)}`] : []),
      ];
      const note = missing.length ? `${done}; ${missing.join('; ')}` : done;
      const details = { childWorkflowId: childId, dryRun: result.dryRun, totals: t, notFoundUserIds: notFound, failedUserIds: failedUsers };
      this.tracker.stepDone(step, outcome, 'runbook', note, details);
      if (outcome !== 'succeeded') this.tracker.attention(`${step} ${outcome}: ${missing.join('; ')} (see ${childId})`);
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.tracker.stepDone(step, 'failed', 'runbook', `revocation workflow ${childId} failed: ${errorMessage(err)}`, { childWorkflowId: childId });
      this.tracker.attention(`${step} failed: ${errorMessage(err)}`);
    }
  }

  // -- user reconciliation (webhook backlog) ----------------------------------------------------

  async reconcileUsers(step: ManualStep): Promise<boolean> {
    return reconcileUsersStep(this.tracker, this.input, step);
  }

  // -- close ------------------------------------------------------------------------------------

  /** What keeps the incident from `resolved` (see `openItems`). */
  openItems(fixedWhen: readonly string[]): string[] {
    return openItems(this.state, fixedWhen, this.input.dryRun);
  }

  /**
   * The end of an incident: `resolved` when nothing is open; otherwise `needs_human`, listing
   * what is open, until the commander sends `resolve` or `resolveWithin` runs out (closed unresolved).
   */
  async conclude(items: string[]): Promise<void> {
    if (!items.length) return this.close();
    const t = this.input.timeouts;
    const id = this.state.incidentId;
    const list = items.join('; ');
    const resolveCommand = INCIDENT_COMMANDS.resolve(id);
    this.state.openItems = items;
    this.tracker.setStatus('needs_human', `still open: ${list}`);
    this.tracker.waitFor(`a human: ${list}. When it is over, the reporter or an approver resolves it (${resolveCommand}) by ${new Date(Date.now() + t.resolveWithin).toISOString()}`);
    await this.tracker.notify('needs_attention', 'Incident needs a human', `The runbook could not verify a fix. Still open: ${list}. When it is over, resolve it: ${resolveCommand}`);
    if (await this.resolution.wait(items, t.escalateAfter, t.resolveWithin)) {
      const r = this.resolution.accepted as NonNullable<Resolution['accepted']>;
      this.state.resolution = r;
      this.tracker.record('resolve', r.resolvedBy, `resolved by ${r.resolvedBy}: ${r.summary} (still open at the time: ${list})`, { openItems: items });
      this.state.openItems = [];
      return this.close();
    }
    this.tracker.record('close', 'runbook', `closed unresolved: nobody sent resolve within ${formatDuration(t.resolveWithin)}; still open: ${list}`);
    this.state.waitingFor = `nothing: closed unresolved, still needs a human (${list})`;
    this.tracker.publish();
    await this.tracker.notify('needs_attention', 'Incident closed unresolved', `Nobody resolved it within ${formatDuration(t.resolveWithin)}. Still open: ${list}.`);
    await this.writeReview();
    await this.tracker.flushNotifications();
  }

  async close(): Promise<void> {
    this.state.waitingFor = 'nothing: incident closed';
    this.tracker.setStatus('resolved');
    const open = this.state.attention.length;
    this.tracker.record('close', 'runbook', open ? `incident closed; ${open} item(s) need a human` : 'incident closed');
    this.tracker.publish();
    await this.writeReview();
    await this.tracker.flushNotifications();
  }

  async cancel(): Promise<void> {
    this.tracker.record('cancel', 'runbook', 'incident cancelled: running the compensations of the steps already applied');
    await this.compensate();
    this.state.waitingFor = 'nothing: incident cancelled';
    this.tracker.setStatus('cancelled');
    await this.writeReview();
    await this.tracker.flushNotifications();
  }

  /**
   * The post-incident review, written by an activity from this incident's event history and
   * state, as the last step however it ended; posted to the channel with the command to read it.
   */
  async writeReview(): Promise<void> {
    const id = this.state.incidentId;
    const after = this.state.waitingFor;
    this.tracker.waitFor('review: writing the post-incident review from the event history');
    try {
      this.review = await activities.writeReview.executeWithOptions(
        { summary: 'review: the post-incident review from the event history', startToCloseTimeout: '1 minute' },
        [{ state: this.tracker.snapshot() }],
      );
      const { review, markdown } = this.review;
      this.state.review = markdown;
      const note = `review written: ${review.timeline.length} timeline line(s), ${review.actionItems.length} action item(s); read it with ${INCIDENT_COMMANDS.review(id)}`;
      this.tracker.stepDone('review', 'succeeded', 'runbook', note, { actionItems: review.actionItems.map((a) => a.text) });
      const items = review.actionItems.map((a) => `• ${a.text}`);
      await this.tracker.notify('review_written', 'Post-incident review', [`Status ${this.state.status}. ${note}.`, ...(items.length ? ['Action items:', ...items] : [])].join('\n'));
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.tracker.stepDone('review', 'failed', 'runbook', `the review could not be written: ${errorMessage(err)}; ${INCIDENT_COMMANDS.review(id)} writes it from a terminal`);
      this.tracker.attention(`review failed: ${errorMessage(err)}`);
    }
    this.state.waitingFor = after;
    this.tracker.publish();
  }
}
