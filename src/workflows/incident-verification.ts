/**
 * What the probes see: triage when the incident opens, the recovery watch on the Clerk status page
 * (durable timers), and the verification of a fix by probing again.
 */
import { isCancellation, proxyActivities, sleep } from '@temporalio/workflow';
import type { TriageActivities } from '../activities';
import { formatDuration } from '../domain';
import { NON_RETRYABLE_ERROR_TYPES } from '../shared';
import { classify, formatProbeReport, reconcile, type ProbeReport } from '../triage/rules';
import { errorMessage } from './incident-state';
import type { IncidentContext } from './incident-steps';

const activities = proxyActivities<TriageActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
});

export interface VerificationStep {
  /** Poll the Clerk status page on a durable timer until it says `none`; false when it never did. */
  watchRecovery(): Promise<boolean>;
  /** Re-run the triage probes; true when every probe ran and passes. */
  /** `settle`: the fix may take a while to show (a rollback nobody confirms): probe every `every` ms until it passes or `within` ms are over. */
  verifyFix(step: string, settle?: { within: number; every: number }): Promise<boolean>;
}

/** One run of the triage probes, as a remedy's verification reads it. */
export interface ProbesSeen {
  /** Every probe ran and passes. */
  clear: boolean;
  /** The category of what is wrong, visible from outside; absent when nothing is (or only gaps: a probe could not run). */
  sees?: string;
  /** One line: the rule and its reason. */
  line: string;
  probes: string[];
}

export class Verification implements VerificationStep {
  /** Checks of the status-page watch under way (carried by continue-as-new); undefined when none runs. */
  recoveryChecks?: number;

  constructor(private readonly ctx: IncidentContext) {}

  /** Classify from the probes, against the reporter's category; the verdict sets category and severity. */
  async triage(): Promise<void> {
    const timeoutMs = this.ctx.input.timeouts.probe;
    this.ctx.tracker.publish();
    const report: ProbeReport = await activities.runTriageProbes.executeWithOptions(
      {
        summary: `triage: status page, Backend API, health route, app routes (${formatDuration(timeoutMs)} each)`,
        startToCloseTimeout: timeoutMs * 2 + 10_000,
        retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
      },
      [{ timeoutMs }],
    );
    const verdict = reconcile(this.ctx.input.category, classify(report));
    const probes = formatProbeReport(report);
    this.ctx.tracker.state.category = verdict.category;
    this.ctx.tracker.state.severity = verdict.severity;
    this.ctx.tracker.state.triage = { agreement: verdict.agreement, rule: verdict.classification.rule, note: verdict.note, probes };
    this.ctx.tracker.record('triage', 'runbook', verdict.note, { agreement: verdict.agreement, rule: verdict.classification.rule, probes });
    if (report.backendApi.kind === 'unauthorized') {
      // The probe calls Clerk with the worker's own key: every Clerk step of this incident would fail the same way.
      const answer = `${report.backendApi.status ?? 401}${report.backendApi.code ? ` ${report.backendApi.code}` : ''}`;
      this.ctx.tracker.attention(`the worker's own Clerk secret key is invalid (the Backend API answered ${answer}): point its CLERK_SECRET_KEY_REF at a live key (a cancelled rotation may have left the old one) and restart it`);
    }
    if (verdict.agreement === 'disagreed') {
      this.ctx.tracker.attention(`triage disagrees with the reporter: ${verdict.note}`);
      this.ctx.tracker.notifyLater('needs_attention', 'Triage disagrees with the reporter', verdict.note);
    }
    this.ctx.tracker.publish();
  }

  async watchRecovery(): Promise<boolean> {
    const every = this.ctx.input.timeouts.recoveryCheckEvery;
    const maxChecks = Math.max(1, Math.ceil(this.ctx.input.timeouts.recoveryWatchFor / every));
    const probe = async (summary: string) => {
      try {
        const s = await activities.probeStatusPage.executeWithOptions({ summary }, [{ timeoutMs: this.ctx.input.timeouts.probe }]);
        return s.indicator;
      } catch (err) {
        if (isCancellation(err)) throw err;
        this.ctx.tracker.record('recovery_watch', 'runbook', `status page did not answer: ${errorMessage(err)}`);
        return 'unknown' as const;
      }
    };
    let indicator = await probe('monitoring: Clerk status page');
    let checks = this.recoveryChecks ?? 0;
    while (indicator !== 'none' && checks < maxChecks) {
      checks += 1;
      this.recoveryChecks = checks - 1;
      this.ctx.tracker.waitFor(`Clerk to recover (status page: ${indicator}); check ${checks} of ${maxChecks} in ${formatDuration(every)}`);
      // The wait between checks is a safe point for continue-as-new; the next run checks again at once.
      await this.ctx.guard.wait(() => false, every, `monitoring: next Clerk status check (${checks}/${maxChecks})`);
      indicator = await probe(`monitoring: Clerk status page, check ${checks}`);
    }
    this.recoveryChecks = undefined;
    const recovered = indicator === 'none';
    if (recovered) this.ctx.tracker.stepDone('recovery_watch', 'succeeded', 'runbook', `Clerk recovered after ${checks} check(s)`, { checks, indicator });
    else {
      this.ctx.tracker.stepDone('recovery_watch', 'failed', 'runbook', `Clerk still reports ${indicator} after ${checks} checks; handing over to a human`, { checks, indicator });
      this.ctx.tracker.attention('Clerk has not recovered within the recovery watch');
      await this.ctx.tracker.notify('needs_attention', 'Clerk has not recovered', `The status page still reports ${indicator} after ${formatDuration(this.ctx.input.timeouts.recoveryWatchFor)}.`);
    }
    return recovered;
  }

  /** The triage probes once (`step` names the activity), for a remedy's verification beside its check. */
  async probeOnce(step: string): Promise<ProbesSeen> {
    const report = await this.probe(`${step}: the triage probes`);
    const seen = classify(report);
    // A minor incident on Clerk's status page, our own probes passing, is said but breaks nothing of ours.
    const broken = seen.category && seen.rule !== 'status_page_minor';
    return { clear: seen.rule === 'all_clear', ...(broken ? { sees: seen.category } : {}), line: `${seen.rule}: ${seen.reason}`, probes: formatProbeReport(report) };
  }

  /** The triage probes once, each bounded by the incident's probe timeout (`summary` names the activity). */
  private probe(summary: string): Promise<ProbeReport> {
    const timeoutMs = this.ctx.input.timeouts.probe;
    return activities.runTriageProbes.executeWithOptions({ summary: `${summary} (${formatDuration(timeoutMs)} each)`, startToCloseTimeout: timeoutMs * 2 + 10_000 }, [{ timeoutMs }]);
  }

  async verifyFix(step: string, settle?: { within: number; every: number }): Promise<boolean> {
    this.ctx.tracker.waitFor(`${step}: probing again to verify the fix${settle ? ` (for up to ${formatDuration(settle.within)} while it takes effect)` : ''}`);
    const probe = () => this.probe(`${step}: probe again`);
    let report = await probe();
    let seen = classify(report);
    const until = Date.now() + (settle?.within ?? 0);
    while (settle && seen.rule !== 'all_clear' && Date.now() + settle.every <= until) {
      await sleep(settle.every, { summary: `${step}: not yet (${seen.rule}); probe again` });
      report = await probe();
      seen = classify(report);
    }
    // Verified means every probe ran and passed: another failure (an outage masks the app's
    // symptoms) or a probe that could not run verifies nothing.
    const fixed = seen.rule === 'all_clear';
    const probes = formatProbeReport(report);
    if (fixed) this.ctx.tracker.stepDone(step, 'succeeded', 'runbook', `the probes no longer see ${this.ctx.tracker.state.category} (${seen.reason})`, { probes });
    else {
      const why = seen.category === this.ctx.tracker.state.category ? `the probes still see ${this.ctx.tracker.state.category}` : `could not verify the fix: ${seen.rule}`;
      this.ctx.tracker.stepDone(step, 'failed', 'runbook', `${why}: ${seen.reason}`, { probes });
      this.ctx.tracker.attention(`${step}: the fix did not take (${seen.reason})`);
    }
    return fixed;
  }
}
