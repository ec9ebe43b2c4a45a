/**
 * `npm run drill -- <category> --via slack`: the drill's approvers decide in the sandbox's emulated
 * Slack, as people would: the gate's message in the incident's thread, a click on its Approve
 * button as the approver's Slack user (the roster's `chatUserId`), and the outcome read back from
 * the message the app rewrote. Nothing is sent to the incident but what the clicks make the app send.
 */
import type { SandboxAdminClient } from '@clerk-incident-runbook/clerk-sandbox/admin-client';
import type { GatedStep } from '../domain';
import { resolvePerson } from '../roster/resolve';
import type { Roster } from '../roster/schema';
import { actionItemLine, APPROVE_ACTION, OUTCOME_BLOCK, REVIEW_FINALIZE_ACTION, REVIEW_FINDINGS_ACTION, REVIEW_VIEW } from '../chat/slack-messages';

type Overview = Awaited<ReturnType<SandboxAdminClient['slack']>>;
type Message = Overview['channels'][number]['messages'][number];
type Reply = Message['replies'][number];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class DrillSlackError extends Error {
  override readonly name = 'DrillSlackError';
}

/** What a drill's Slack clicks did, for its check. */
export interface SlackClickRecord {
  incidentId: string;
  step: GatedStep;
  user: string;
  ts: string;
  status: number | string;
  outcome: string;
}

export class DrillSlack {
  readonly clicks: SlackClickRecord[] = [];

  constructor(
    readonly admin: SandboxAdminClient,
    private readonly roster: Roster,
  ) {}

  /** The approver's Slack user, as the roster maps it. */
  userOf(name: string): string {
    const r = resolvePerson(this.roster, name);
    if (!r.ok) throw new DrillSlackError(`${name}: ${r.error.message}`);
    if (!r.person.chatUserId) throw new DrillSlackError(`${name}: the roster gives ${r.person.id} no chatUserId, so they cannot decide in Slack`);
    return r.person.chatUserId;
  }

  /** The incident's thread: the top-level message whose header names it. */
  static threadOf(o: Overview, incidentId: string): { channel: string; root: Message } | undefined {
    for (const c of o.channels) {
      const root = c.messages.find((m) => (m.blocks ?? []).some((b) => b.type === 'header' && JSON.stringify(b).includes(`"Incident ${incidentId}"`)));
      if (root) return { channel: c.id, root };
    }
    return undefined;
  }

  /** Whether a message shows the actions block `blockId` (`gate:<step>`, `review`). */
  private static shows(m: Reply, blockId: string): boolean {
    return (m.blocks ?? []).some((b) => b.type === 'actions' && (b as { block_id?: string }).block_id === blockId);
  }

  private static outcomeOf(m: Reply | undefined): string | undefined {
    const b = (m?.blocks ?? []).find((x) => (x as { block_id?: string }).block_id === OUTCOME_BLOCK);
    return b ? JSON.stringify(b) : undefined;
  }

  /** The newest reply of the incident's thread that shows the actions block `blockId`. */
  private async newestShowing(incidentId: string, blockId: string, what: string, timeoutMs: number): Promise<{ channel: string; ts: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const thread = DrillSlack.threadOf(await this.admin.slack(), incidentId);
      const reply = thread?.root.replies.filter((r) => DrillSlack.shows(r, blockId)).at(-1);
      if (thread && reply) return { channel: thread.channel, ts: reply.ts };
      if (Date.now() > deadline) throw new DrillSlackError(`no message with ${what} in the thread of ${incidentId} within ${timeoutMs / 1000} s${thread ? ` (${thread.root.replies.length} replies)` : ' (no thread)'}`);
      await sleep(250);
    }
  }

  /** The newest reply of the thread that shows `step`'s buttons. */
  gateMessage(incidentId: string, step: GatedStep, timeoutMs: number): Promise<{ channel: string; ts: string }> {
    return this.newestShowing(incidentId, `gate:${step}`, `${step}'s buttons`, timeoutMs);
  }

  /**
   * `who` clicks `actionId` on message `ts` as Slack user `user`, then waits until the app wrote an
   * outcome that `done` accepts into it; an ephemeral to the clicker that `refusal` matches stops the drill with its text.
   */
  private async clickAndWait(o: { incidentId: string; channel: string; ts: string; actionId: string; user: string; who: string; what: string; done: (outcome: string) => boolean; refusal: (text: string) => boolean; timeoutMs: number }): Promise<{ outcome: string; status: number | string }> {
    const before = (await this.admin.slack()).ephemerals.filter((e) => e.user === o.user).length;
    const clicked = await this.admin.slackClick({ channel: o.channel, ts: o.ts, actionId: o.actionId, userId: o.user });
    if (clicked.status !== 200) throw new DrillSlackError(`${o.who}'s click on ${o.what} answered ${clicked.status}: ${clicked.body.slice(0, 200)}`);
    const deadline = Date.now() + o.timeoutMs;
    for (;;) {
      const seen = await this.admin.slack();
      const outcome = DrillSlack.outcomeOf(DrillSlack.threadOf(seen, o.incidentId)?.root.replies.find((r) => r.ts === o.ts));
      if (outcome && o.done(outcome)) return { outcome, status: clicked.status };
      const refused = seen.ephemerals.filter((e) => e.user === o.user).slice(before).find((e) => o.refusal(e.text));
      if (refused) throw new DrillSlackError(`${o.who}'s click on ${o.what} was refused: ${refused.text}`);
      if (Date.now() > deadline) throw new DrillSlackError(`${o.who}'s click on ${o.what}: no outcome in the message within ${o.timeoutMs / 1000} s`);
      await sleep(200);
    }
  }

  /**
   * `approver` clicks Approve on `step`'s message; returns the outcome line the app wrote into it.
   * A refusal (said to the clicker ephemerally) stops the drill with its text.
   */
  async approve(incidentId: string, step: GatedStep, approver: string, timeoutMs = 30_000): Promise<string> {
    const user = this.userOf(approver);
    const { channel, ts } = await this.gateMessage(incidentId, step, timeoutMs);
    const { outcome, status } = await this.clickAndWait({ incidentId, channel, ts, actionId: APPROVE_ACTION, user, who: approver, what: step, done: (x) => x.includes(user), refusal: (t) => t.includes(step), timeoutMs });
    this.clicks.push({ incidentId, step, user, ts, status, outcome });
    return outcome;
  }

  /** The commander clicks "Write the findings…", fills in the modal and sends it; a refusal in the form stops the drill with its text. */
  async completeReview(
    incidentId: string,
    commander: string,
    f: { rootCause: string; trigger: string; detection: string; wentWell: string[]; actionItems: { title: string; owner: string; due: string }[] },
    timeoutMs = 30_000,
  ): Promise<void> {
    const user = this.userOf(commander);
    const { channel, ts } = await this.newestShowing(incidentId, 'review', "the review's buttons", timeoutMs);
    const opened = (await this.admin.slack()).views.length;
    const clicked = await this.admin.slackClick({ channel, ts, actionId: REVIEW_FINDINGS_ACTION, userId: user });
    if (clicked.status !== 200) throw new DrillSlackError(`${commander}'s click on "Write the findings" answered ${clicked.status}`);
    const deadline = Date.now() + timeoutMs;
    let viewId: string | undefined;
    while (!viewId) {
      viewId = (await this.admin.slack()).views.slice(opened).find((v) => v.user === user && v.status === 'open' && v.view.callback_id === REVIEW_VIEW)?.id;
      if (viewId) break;
      if (Date.now() > deadline) throw new DrillSlackError(`${commander}: the findings form did not open within ${timeoutMs / 1000} s`);
      await sleep(200);
    }
    const submitted = await this.admin.slackSubmit({
      viewId,
      userId: user,
      values: {
        root_cause: { root_cause: f.rootCause },
        trigger: { trigger: f.trigger },
        detection: { detection: f.detection },
        data_loss: { data_loss: 'none' },
        went_well: { went_well: f.wentWell.join('\n') },
        went_wrong: { went_wrong: '' },
        got_lucky: { got_lucky: '' },
        action_items: { action_items: f.actionItems.map(actionItemLine).join('\n') },
      },
    });
    if (!submitted.closed) throw new DrillSlackError(`${commander}'s findings were refused in the form: ${JSON.stringify(submitted.errors ?? submitted.body).slice(0, 300)}`);
  }

  /** The commander clicks "Finalize the review"; returns the outcome line the app wrote. */
  async finalizeReview(incidentId: string, commander: string, timeoutMs = 30_000): Promise<string> {
    const user = this.userOf(commander);
    const { channel, ts } = await this.newestShowing(incidentId, 'review', "the review's buttons", timeoutMs);
    const { outcome } = await this.clickAndWait({ incidentId, channel, ts, actionId: REVIEW_FINALIZE_ACTION, user, who: commander, what: '"Finalize the review"', done: (x) => x.includes('Review final') && x.includes(user), refusal: (t) => t.includes('review'), timeoutMs });
    return outcome;
  }
}
