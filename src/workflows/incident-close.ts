/**
 * How an incident ends: `resolved` when the runbook verified it all, otherwise `needs_human`
 * until the commander resolves it (or it closes unresolved); cancelled with its compensations
 * run. The post-incident review is written last, however it ended.
 */
import { isCancellation, proxyActivities } from '@temporalio/workflow';
import type { ReviewActivities } from '../activities';
import { formatDuration } from '../domain';
import type { Review } from '../review/build';
import { INCIDENT_COMMANDS, NON_RETRYABLE_ERROR_TYPES } from '../shared';
import type { Resolution } from './incident-requests';
import { rollbackClosingNote } from './rollback-record';
import { errorMessage, openItems } from './incident-state';
import type { IncidentContext } from './incident-steps';
import type { Journal } from './incident-continue';
import { ReviewPhase } from './incident-review-phase';

const activities = proxyActivities<ReviewActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
});

export class IncidentClose {
  /** The post-incident review, once written (the `getReview` query). */
  review?: { markdown: string; review: Review };

  /** After `resolved`: the findings and the final review (completeReview, finalizeReview go to it). */
  readonly phase: ReviewPhase;

  constructor(
    private readonly ctx: IncidentContext,
    private readonly resolution: Resolution,
    private readonly journal: Journal,
  ) {
    this.phase = new ReviewPhase(ctx.tracker);
  }

  /** What keeps the incident from `resolved` (see `openItems`). */
  openItems(fixedWhen: readonly string[]): string[] {
    return openItems(this.ctx.tracker.state, fixedWhen, this.ctx.input.dryRun);
  }

  /**
   * The end of an incident: `resolved` when nothing is open; otherwise `needs_human`, listing
   * what is open, until the commander sends `resolve` or `resolveWithin` runs out (closed unresolved).
   */
  async conclude(items: string[]): Promise<void> {
    if (!items.length) return this.close();
    const t = this.ctx.input.timeouts;
    const id = this.ctx.tracker.state.incidentId;
    const list = items.join('; ');
    const resolveCommand = INCIDENT_COMMANDS.resolve(id);
    this.ctx.tracker.state.openItems = items;
    // A run continued as new while waiting for `resolve` has said all this already.
    if (!this.resolution.waiting) {
      this.ctx.tracker.setStatus('needs_human', `still open: ${list}`);
      this.ctx.tracker.waitFor(`a human: ${list}. When it is over, the reporter or an approver resolves it (${resolveCommand}) by ${new Date(Date.now() + t.resolveWithin).toISOString()}`);
      await this.ctx.tracker.notify('needs_attention', 'Incident needs a human', `The runbook could not verify a fix. Still open: ${list}. When it is over, resolve it: ${resolveCommand}`);
    }
    if (await this.resolution.wait(items, t.escalateAfter, t.resolveWithin)) {
      const r = this.resolution.accepted as NonNullable<Resolution['accepted']>;
      this.ctx.tracker.state.resolution = r;
      this.ctx.tracker.record('resolve', r.resolvedBy, `resolved by ${r.resolvedBy}: ${r.summary} (still open at the time: ${list})`, { openItems: items });
      this.ctx.tracker.state.openItems = [];
      return this.close();
    }
    this.ctx.tracker.record('close', 'runbook', `closed unresolved: nobody sent resolve within ${formatDuration(t.resolveWithin)}; still open: ${list}`);
    this.ctx.tracker.state.waitingFor = `nothing: closed unresolved, still needs a human (${list})`;
    this.ctx.tracker.publish();
    await this.ctx.tracker.notify('needs_attention', 'Incident closed unresolved', `Nobody resolved it within ${formatDuration(t.resolveWithin)}. Still open: ${list}.`);
    this.ctx.tracker.pager.closed();
    await this.ctx.tracker.pager.flush();
    await this.writeReview();
    await this.ctx.tracker.flushNotifications();
  }

  async close(): Promise<void> {
    this.ctx.tracker.state.waitingFor = 'nothing: incident closed';
    this.ctx.tracker.setStatus('resolved');
    const open = this.ctx.tracker.state.attention.length;
    const rollback = rollbackClosingNote(this.ctx.tracker.state);
    this.ctx.tracker.record('close', 'runbook', `${open ? `incident closed; ${open} item(s) need a human` : 'incident closed'}${rollback ? `; ${rollback}` : ''}`);
    this.ctx.tracker.publish();
    this.ctx.tracker.pager.closed();
    await this.ctx.tracker.pager.flush();
    if (rollback) await this.ctx.tracker.notify('status_changed', 'Incident closed: auto-promote is off', `The incident is closed; ${rollback}.`);
    // The worker's post-incident phase (REVIEW_PHASE): a draft now, the findings from the commander, then the final review.
    const phase = await this.journal.once('review_phase', () => activities.reviewPhaseSettings.executeWithOptions({ summary: 'review: the post-incident phase setting' }, []));
    if (phase) await this.phase.run(phase, () => this.writeReview('draft'));
    await this.writeReview();
    await this.ctx.tracker.flushNotifications();
  }

  async cancel(): Promise<void> {
    const asked = this.ctx.tracker.state.cancelRequest;
    const by = asked ? `by ${asked.by}${asked.reason ? ` (${asked.reason})` : ''}` : 'from outside the runbook\'s CLI (Temporal UI or CLI: no roster check; the review names the client identity)';
    this.ctx.tracker.record('cancel', 'runbook', `incident cancelled ${by}: running the compensations of the steps already applied`);
    await this.ctx.compensations.compensate();
    this.ctx.tracker.state.waitingFor = 'nothing: incident cancelled';
    this.ctx.tracker.setStatus('cancelled');
    this.ctx.tracker.pager.closed();
    await this.ctx.tracker.pager.flush();
    await this.writeReview();
    await this.ctx.tracker.flushNotifications();
  }

  /**
   * The post-incident review, written by an activity from this incident's event history and
   * state, as the last step however it ended; posted to the channel with the command to read it.
   */
  async writeReview(kind: 'draft' | 'final' = 'final'): Promise<void> {
    const id = this.ctx.tracker.state.incidentId;
    const after = this.ctx.tracker.state.waitingFor;
    this.ctx.tracker.waitFor(`review: writing the ${kind === 'draft' ? 'draft of the ' : ''}post-incident review from the event history`);
    try {
      this.review = await activities.writeReview.executeWithOptions(
        { summary: `review: the ${kind === 'draft' ? 'draft' : 'post-incident review'} from the event history`, startToCloseTimeout: '1 minute' },
        [{ state: this.ctx.tracker.snapshot() }],
      );
      const { review, markdown } = this.review;
      this.ctx.tracker.state.review = markdown;
      // A draft is read with the same command; only the final review is a step, and goes to the channel.
      if (kind === 'draft') {
        this.ctx.tracker.state.waitingFor = after;
        this.ctx.tracker.publish();
        return;
      }
      const note = `review written: ${review.timeline.length} timeline line(s), ${review.actionItems.length} action item(s); read it with ${INCIDENT_COMMANDS.review(id)}`;
      this.ctx.tracker.stepDone('review', 'succeeded', 'runbook', note, { actionItems: review.actionItems.map((a) => a.text) });
      const items = review.actionItems.map((a) => `• ${a.text}`);
      // Only history knows the client identity of an update (the SDK's handlers do not see it): said here, at the end.
      const shared = review.whoDecided.flatMap((d) => (d.sharedIdentity ? [`• #${d.eventId} ${d.sharedIdentity}`] : []));
      await this.ctx.tracker.notify('review_written', 'Post-incident review', [
        `Status ${this.ctx.tracker.state.status}. ${note}.`,
        ...(shared.length ? ['SHARED CLIENT IDENTITY: one client decided for two people:', ...shared] : []),
        ...(items.length ? ['Action items:', ...items] : []),
      ]);
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.ctx.tracker.stepDone('review', 'failed', 'runbook', `the review could not be written: ${errorMessage(err)}; ${INCIDENT_COMMANDS.review(id)} writes it from a terminal`);
      this.ctx.tracker.attention(`review failed: ${errorMessage(err)}`);
    }
    this.ctx.tracker.state.waitingFor = after;
    this.ctx.tracker.publish();
  }
}
