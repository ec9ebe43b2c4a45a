/**
 * Diagnostics of `middleware_failure` and `session_issues`: the runbook's error-handling table as
 * checks run by one activity, each bounded; the verdicts go to the timeline, the details and the channel.
 */
import { isCancellation, proxyActivities } from '@temporalio/workflow';
import type { DiagnosticsActivities } from '../activities';
import { checkLine, type Check, type DiagnosticKind, type DiagnosticsSummary } from '../diagnostics/rules';
import { formatDuration } from '../domain';
import { NON_RETRYABLE_ERROR_TYPES } from '../shared';
import { errorMessage } from './incident-state';
import type { IncidentContext } from './incident-steps';

const activities = proxyActivities<DiagnosticsActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
});

export interface DiagnosticsStep {
  /** Run the diagnostics of `kind` (for `userIds`' sessions); their summary, or undefined when they could not run. */
  run(kind: DiagnosticKind, userIds?: string[], opts?: { sessionsCreatedAfter?: number }): Promise<{ summary: DiagnosticsSummary; checks: Check[] } | undefined>;
}

export class Diagnostics implements DiagnosticsStep {
  constructor(private readonly ctx: IncidentContext) {}


  /**
   * The runbook's error-handling table as checks (clock skew, keys, domains, authorized parties,
   * session lifetime, middleware and SDK), each bounded; the verdicts go to the timeline, the
   * details and the channel. Undefined when they could not run.
   */
  async run(kind: DiagnosticKind, userIds?: string[], opts: { sessionsCreatedAfter?: number } = {}): Promise<{ summary: DiagnosticsSummary; checks: Check[] } | undefined> {
    const timeoutMs = this.ctx.input.timeouts.probe;
    this.ctx.tracker.waitFor(`diagnostics: ${kind} checks (${formatDuration(timeoutMs)} each)`);
    try {
      const report = await activities.runDiagnostics.executeWithOptions(
        { summary: `diagnostics: ${kind} checks (${formatDuration(timeoutMs)} each)`, startToCloseTimeout: timeoutMs * 3 + 10_000 },
        [{ kind, timeoutMs, ...(userIds?.length ? { userIds } : {}), ...(opts.sessionsCreatedAfter !== undefined ? { sessionsCreatedAfter: opts.sessionsCreatedAfter } : {}) }],
      );
      const { summary, checks } = report;
      const findings = checks.filter((c) => c.verdict === 'warn' || c.verdict === 'fail').map(checkLine);
      this.ctx.tracker.stepDone('diagnostics', 'succeeded', 'runbook', `${summary.verdict}: ${summary.text}`, { verdict: summary.verdict, cause: summary.cause, checks: checks.map(checkLine) });
      if (summary.verdict !== 'ok') {
        this.ctx.tracker.attention(`diagnostics: ${summary.text}`);
        await this.ctx.tracker.notify('needs_attention', `Diagnostics: ${summary.verdict}`, [summary.text, ...findings]);
      }
      return { summary, checks };
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.ctx.tracker.stepDone('diagnostics', 'failed', 'runbook', `diagnostics could not run: ${errorMessage(err)}`);
      this.ctx.tracker.attention(`diagnostics failed: ${errorMessage(err)}`);
      return undefined;
    }
  }
}
