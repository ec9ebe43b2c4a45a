/**
 * The post-incident phase (docs/review.md): once an incident is `resolved`, its workflow stays open
 * (the worker's REVIEW_PHASE, e.g. 7 days) with the review as a draft, and asks the commander for
 * the findings: `completeReview` (root cause, trigger, detection, data loss, users affected,
 * lessons, action items with owners and due dates), as often as needed, then `finalizeReview`, or
 * the deadline, closes it with the final review. Reminders go to the channel on durable timers
 * (nobody is paged for a review). Only the reporter or an approver (with a roster: its policy for
 * `resolve`) may send them.
 */
import { condition } from '@temporalio/workflow';
import { formatDuration } from '../domain';
import type { ReviewPhaseSettings } from '../review/phase-settings';
import { resolvePerson } from '../roster/resolve';
import { actionText } from '../roster/policy';
import { INCIDENT_COMMANDS } from '../shared';
import { parseRequest, UpdateRefused } from './incident-errors';
import { actedAs, personOnIncident } from './incident-requests';
import { spendNonce } from './incident-roster';
import type { IncidentTracker } from './incident-state';
import {
  completeReviewSchema,
  finalizeReviewSchema,
  type CompleteReviewRequest,
  type FinalizeReviewRequest,
  type PostIncidentRecord,
  type ReviewActionItem,
  type ReviewPhaseAnswer,
} from './incident-types';


const FINDINGS = ['rootCause', 'trigger', 'detection', 'dataLoss', 'usersAffected', 'lessons'] as const;

export class ReviewPhase {
  constructor(private readonly tracker: IncidentTracker) {}

  private open(): PostIncidentRecord {
    const p = this.tracker.state.postIncident;
    if (!p) throw new UpdateRefused(`update: the incident is not in its post-incident phase (status ${this.tracker.state.status}); findings are taken once it is resolved, until the review is final`);
    if (p.final) throw new UpdateRefused(`update: the review is already final (${p.final.how} at ${p.final.at})`);
    return p;
  }

  /** With a roster, an owner is one of its people (by id, email, name or alias); without, the name as given. */
  private owners(items: ReviewActionItem[]): ReviewActionItem[] {
    const recorded = this.tracker.state.roster?.roster;
    if (!recorded) return items;
    return items.map((item, i) => {
      const found = resolvePerson(recorded, item.owner);
      if (!found.ok) throw new UpdateRefused(`update.actionItems.${i}.owner: ${item.owner.slice(0, 200)} is not a person of the roster (${recorded.source})`);
      return { ...item, owner: found.person.id };
    });
  }

  validateComplete(raw: CompleteReviewRequest) {
    const req = parseRequest(completeReviewSchema, raw);
    this.open();
    const acting = personOnIncident(this.tracker, { action: 'resolve', step: 'incident', field: 'completedBy', who: req.completedBy, text: actionText(req), signature: req.signature, nonce: req.nonce });
    return { req, acting, actionItems: req.actionItems ? this.owners(req.actionItems) : undefined };
  }

  complete(raw: CompleteReviewRequest): ReviewPhaseAnswer {
    const { req, acting, actionItems } = this.validateComplete(raw);
    const p = this.open();
    spendNonce(this.tracker.state, acting);
    const { completedBy: _c, signature: _s, nonce: _n, actionItems: _a, ...given } = req;
    p.findings = { ...p.findings, ...given, by: acting.person, at: new Date().toISOString() };
    if (actionItems) p.actionItems = actionItems;
    p.completions += 1;
    const fields = [...Object.keys(given), ...(actionItems ? [`${actionItems.length} action item(s)`] : [])];
    this.tracker.record('review', acting.person, `findings from ${acting.person}${actedAs(acting, req.completedBy)}: ${fields.join(', ') || 'nothing new'}`, { fields });
    this.tracker.publish();
    return { by: acting.person, message: `findings recorded (${fields.join(', ') || 'nothing new'}); the draft is rewritten; finalize with ${INCIDENT_COMMANDS.finalizeReview(this.tracker.state.incidentId)}` };
  }

  validateFinalize(raw: FinalizeReviewRequest) {
    const req = parseRequest(finalizeReviewSchema, raw);
    this.open();
    if (this.finalRequested) throw new UpdateRefused('update: the review is already being finalized');
    const acting = personOnIncident(this.tracker, { action: 'resolve', step: 'incident', field: 'finalizedBy', who: req.finalizedBy, text: actionText(req), signature: req.signature, nonce: req.nonce });
    return { req, acting };
  }

  /** Set by finalizeReview; the phase's loop then writes the final review. */
  finalRequested?: { by: string; at: string; note?: string };

  finalize(raw: FinalizeReviewRequest): ReviewPhaseAnswer {
    const { req, acting } = this.validateFinalize(raw);
    spendNonce(this.tracker.state, acting);
    this.finalRequested = { by: acting.person, at: new Date().toISOString(), ...(req.note ? { note: req.note } : {}) };
    return { by: acting.person, message: 'the review is being finalized; the incident closes with it' };
  }

  /** What the commander has not given yet, for the reminders. */
  private missing(p: PostIncidentRecord): string[] {
    const f = p.findings ?? {};
    return [...FINDINGS.filter((k) => (f as Record<string, unknown>)[k] === undefined), ...(p.actionItems ? [] : ['action items (owners, due dates)'])];
  }

  /**
   * The phase: the draft is rewritten after each completeReview; a reminder every `remindEveryMs`
   * while something is missing; ends at finalizeReview or the deadline. Returns how it ended.
   */
  async run(settings: ReviewPhaseSettings, writeDraft: () => Promise<void>): Promise<void> {
    const { state } = this.tracker;
    const since = Date.now();
    const p: PostIncidentRecord = (state.postIncident ??= {
      since: new Date(since).toISOString(),
      until: new Date(since + settings.withinMs).toISOString(),
      remindEveryMs: settings.remindEveryMs,
      completions: 0,
      reminders: 0,
    });
    const id = state.incidentId;
    const until = Date.parse(p.until);
    this.tracker.record('review', 'runbook', `post-incident phase: the review is a draft until ${p.until}; the commander sends the findings (completeReview) and finalizes it`);
    this.tracker.waitFor(`the post-incident review: findings from the commander (${INCIDENT_COMMANDS.completeReview(id)}), then ${INCIDENT_COMMANDS.finalizeReview(id)}, by ${p.until}`);
    await writeDraft();
    await this.tracker.notify('action_needed', 'Post-incident review: findings needed', [
      `Incident "${state.summary}" is resolved. Its review is a draft until ${p.until}.`,
      `Still to give: ${this.missing(p).join(', ')}.`,
      `Read the draft: ${INCIDENT_COMMANDS.review(id)}. Send them: ${INCIDENT_COMMANDS.completeReview(id)}; then ${INCIDENT_COMMANDS.finalizeReview(id)}.`,
    ], undefined, { review: true });
    let seen = p.completions;
    let lastReminder = Date.now();
    while (!this.finalRequested && Date.now() < until) {
      const wakeAt = Math.min(until, lastReminder + settings.remindEveryMs);
      await condition(() => this.finalRequested !== undefined || p.completions !== seen, Math.max(1, wakeAt - Date.now()));
      if (p.completions !== seen) {
        seen = p.completions;
        await writeDraft();
        continue;
      }
      if (!this.finalRequested && Date.now() >= lastReminder + settings.remindEveryMs && Date.now() < until) {
        lastReminder = Date.now();
        p.reminders += 1;
        const missing = this.missing(p);
        await this.tracker.notify('action_needed', 'Reminder: post-incident review', [
          `The review of "${state.summary}" is still a draft; it closes by itself at ${p.until}.`,
          missing.length ? `Still to give: ${missing.join(', ')}.` : `Everything is given: finalize it (${INCIDENT_COMMANDS.finalizeReview(id)}).`,
        ], undefined, { review: true });
      }
    }
    if (p.completions !== seen) await writeDraft();
    const at = new Date().toISOString();
    if (this.finalRequested) {
      p.final = { how: 'finalized', ...this.finalRequested };
      this.tracker.record('review', this.finalRequested.by, `post-incident review completed by ${this.finalRequested.by} at ${at}${this.finalRequested.note ? `: ${this.finalRequested.note}` : ''}`);
    } else {
      p.final = { how: 'deadline', at };
      const what = p.completions ? `findings from ${p.findings?.by} (${p.completions} time(s)), never finalized` : 'nothing was sent';
      this.tracker.record('review', 'runbook', `post-incident phase over after ${formatDuration(settings.withinMs)}: ${what}; the review is final as it stands`);
    }
    this.tracker.publish();
  }
}
