/**
 * What people send besides approvals: requests for optional steps (`requestStep`), confirmations
 * of steps done by hand (`confirmStep`) and the commander's `resolve`. Each has a pure check the
 * update validator runs before anything reaches history, and a durable wait the playbook uses.
 */
import { rollbackRecord } from './rollback-record';
import { condition } from '@temporalio/workflow';
import { CATEGORIES, formatDuration, type GatedStep, type ManualStep } from '../domain';
import { awaitHuman, parseRequest, UpdateRefused } from './incident-approvals';
import { actingPerson, spendNonce, type Acting, type UpdateByPerson } from './incident-roster';
import { actionText } from '../roster/policy';
import {
  cancelRequestSchema,
  confirmRequestSchema,
  type CancelAnswer,
  type CancelRequest,
  resolveRequestSchema,
  stepRequestSchema,
  type ConfirmAnswer,
  type ConfirmRequest,
  type ManualStepRecord,
  type ResolveAnswer,
  type ResolveRequest,
  type StepRequest,
  type StepRequestAnswer,
} from './incident-types';
import type { IncidentTracker } from './incident-state';
import { INCIDENT_COMMANDS } from '../shared';
import type { CarriedIncident, HistoryGuard } from './incident-continue';

/** Only people on the incident (the reporter or a listed approver) may ask, confirm or resolve. */
function checkOnIncident(tracker: IncidentTracker, field: string, who: string): void {
  const { reporter, approvers } = tracker.state;
  if (who !== reporter && !approvers.includes(who)) {
    throw new UpdateRefused(`update.${field}: ${who} is neither the reporter (${reporter}) nor on the approver list (${approvers.join(', ') || 'empty'})`);
  }
}

/**
 * Who sent an update: with a roster, the person its policy allows (incident-roster.ts: resolved,
 * checked, signature verified); without one, the reporter or a listed approver, as given.
 */
export function personOnIncident(tracker: IncidentTracker, u: UpdateByPerson): Acting {
  if (tracker.state.roster) return actingPerson(tracker, u);
  checkOnIncident(tracker, u.field, u.who);
  return { person: u.who };
}

/** The timeline's note of a person's update: the spelling sent, when the roster resolved it to someone else's id, and the key. */
export function actedAs(acting: Acting, sent: string): string {
  return `${acting.person !== sent ? ` (sent as "${sent}")` : ''}${acting.fingerprint ? ` (signed with key ${acting.fingerprint})` : ''}`;
}

// -- optional steps ------------------------------------------------------------------------------




/** Requests for optional steps: accepted while the playbook's window for the step is open. */
export class OptionalSteps {
  private readonly requests = new Map<GatedStep, StepRequest>();
  private readonly closedWindows = new Set<GatedStep>();
  /** When each open window closes (ms), so a continued run waits what is left of it. */
  private readonly windowUntil = new Map<GatedStep, number>();
  guard?: HistoryGuard;

  constructor(private readonly tracker: IncidentTracker) {}

  /** What a continued run needs: the requests, the closed windows, the open ones' ends. */
  carry(): CarriedIncident['optional'] {
    return { requests: [...this.requests.values()], closed: [...this.closedWindows], until: Object.fromEntries(this.windowUntil) };
  }

  restore(c: CarriedIncident['optional']): void {
    for (const r of c.requests) this.requests.set(r.step, r);
    for (const step of c.closed) this.closedWindows.add(step);
    for (const [step, until] of Object.entries(c.until)) if (until !== undefined) this.windowUntil.set(step as GatedStep, until);
  }

  get(step: GatedStep): StepRequest | undefined {
    return this.requests.get(step);
  }

  validate(raw: unknown): StepRequest & { acting: Acting } {
    const { state } = this.tracker;
    const req = parseRequest(stepRequestSchema, raw);
    const optional = state.category ? CATEGORIES[state.category].optionalSteps : [];
    if (!optional.includes(req.step)) {
      throw new UpdateRefused(
        `update.step: ${req.step} cannot be requested in this incident (optional steps of ${state.category ?? 'an unclassified incident'}: ${optional.join(', ') || 'none'})`,
      );
    }
    if (this.requests.has(req.step)) throw new UpdateRefused(`update.step: ${req.step} was already requested by ${this.requests.get(req.step)?.requester}`);
    if (this.closedWindows.has(req.step)) throw new UpdateRefused(`update.step: the window to request ${req.step} has closed`);
    if (req.step === 'targeted_revocation' && !req.userIds) throw new UpdateRefused('update.userIds: targeted_revocation needs the user ids whose sessions to end');
    // Asked for before there is a verified rollback, the undo would run the moment one is verified, unseen.
    if (req.step === 'undo_rollback' && !rollbackRecord(state)) throw new UpdateRefused('update.step: undo_rollback can be requested once a rollback is verified and in place (there is none)');
    const acting = personOnIncident(this.tracker, { action: 'request', step: req.step, field: 'requester', who: req.requester, text: actionText(req), signature: req.signature, nonce: req.nonce });
    return { ...req, acting };
  }

  request(raw: unknown): StepRequestAnswer {
    const { acting, signature: _s, nonce: _n, ...sent } = this.validate(raw);
    const req: StepRequest = { ...sent, requester: acting.person };
    spendNonce(this.tracker.state, acting);
    this.requests.set(req.step, req);
    this.tracker.record(req.step, req.requester, `requested${req.reason ? `: ${req.reason}` : ''}${actedAs(acting, sent.requester)}`, { userIds: req.userIds ?? null, ...(acting.fingerprint ? { fingerprint: acting.fingerprint } : {}) });
    this.tracker.publish();
    return { step: req.step, requestedBy: req.requester, message: `${req.step} requested by ${req.requester}; it now needs an approval from someone else` };
  }

  /** A request made in the incident input counts as made by the reporter at the start. */
  fromInput(req: StepRequest, description: string): void {
    if (this.requests.has(req.step)) return;
    this.requests.set(req.step, req);
    this.tracker.record(req.step, req.requester, description);
  }

  /** Wait up to `window` for a request of `step`; after that, requests are refused. */
  async awaitRequest(step: GatedStep, what: string, window: number): Promise<StepRequest | undefined> {
    if (!this.requests.has(step)) {
      const until = this.windowUntil.get(step) ?? Date.now() + window;
      this.windowUntil.set(step, until);
      this.tracker.waitFor(`an optional request to ${what} (update requestStep with step "${step}") until ${new Date(until).toISOString()}; otherwise none`);
      const left = Math.max(1, until - Date.now());
      const summary = `optional ${step}: wait ${formatDuration(left)} for a request`;
      const requested = () => this.requests.has(step);
      await (this.guard ? this.guard.wait(requested, left, summary) : condition(requested, left, { summary }));
    }
    this.windowUntil.delete(step);
    this.closedWindows.add(step);
    const req = this.requests.get(step);
    if (!req) this.tracker.stepDone(step, 'not_requested', 'runbook', `nobody asked to ${what}`);
    return req;
  }
}

// -- steps done by hand --------------------------------------------------------------------------


export interface ManualStepRequest {
  step: ManualStep;
  instructions: string;
  escalateAfter: number;
  decideWithin: number;
  guard?: HistoryGuard;
}

/** Steps done by hand: the playbook waits for `confirmStep` before the steps that depend on them. */
export class ManualSteps {
  constructor(private readonly tracker: IncidentTracker) {}

  private pending(step: ManualStep): ManualStepRecord {
    const all = this.tracker.state.manualSteps;
    const open = all.filter((m) => !m.outcome);
    const record = open.find((m) => m.step === step);
    if (record) return record;
    const done = [...all].reverse().find((m) => m.step === step);
    const waiting = open.map((m) => m.step).join(', ') || 'none';
    throw new UpdateRefused(
      done
        ? `update.step: ${step} is not waiting for a confirmation: it is already ${done.outcome} (waiting: ${waiting})`
        : `update.step: ${step} is not waiting for a confirmation in this incident (waiting: ${waiting})`,
    );
  }

  validate(raw: unknown): ConfirmRequest & { acting: Acting } {
    const req = parseRequest(confirmRequestSchema, raw);
    this.pending(req.step);
    const acting = personOnIncident(this.tracker, { action: 'confirm', step: req.step, field: 'confirmedBy', who: req.confirmedBy, text: actionText(req), signature: req.signature, nonce: req.nonce });
    return { ...req, acting };
  }

  confirm(raw: unknown): ConfirmAnswer {
    const req = this.validate(raw);
    const record = this.pending(req.step);
    spendNonce(this.tracker.state, req.acting);
    record.outcome = 'done_by_hand';
    record.confirmedBy = req.acting.person;
    record.note = `${req.note}${actedAs(req.acting, req.confirmedBy)}`;
    this.tracker.publish();
    return { step: req.step, confirmedBy: req.acting.person, message: `${req.step} confirmed as done by hand by ${req.acting.person}` };
  }

  /** Ask a person to do `step` by hand and wait for `confirmStep`; true when confirmed in time. */
  async byHand(request: ManualStepRequest): Promise<boolean> {
    const { step, instructions } = request;
    const { tracker } = this;
    const id = tracker.state.incidentId;
    // A run continued as new while this step waited: the same record, its deadlines.
    let record = tracker.state.manualSteps.find((m) => m.step === step && !m.outcome);
    if (!record) {
      const now = Date.now();
      record = {
        step,
        instructions,
        requestedAt: new Date(now).toISOString(),
        escalateAt: new Date(now + request.escalateAfter).toISOString(),
        confirmBy: new Date(now + request.decideWithin).toISOString(),
        escalated: false,
      };
      tracker.state.manualSteps.push(record);
      tracker.record(step, 'runbook', `to do by hand (not automated yet): ${instructions}; waiting for confirmStep`, { confirmBy: record.confirmBy });
      tracker.waitFor(`${step} done by hand: ${instructions}; then confirm (${INCIDENT_COMMANDS.confirm(id, step)}) by ${record.confirmBy}`);
      await tracker.notify(
        'action_needed',
        `Do by hand: ${step}`,
        `${instructions}. The runbook cannot do this yet; the steps after it wait. When it is done, confirm it (${INCIDENT_COMMANDS.confirm(id, step)}); without a confirmation by ${record.confirmBy} it counts as not done (timed_out).`,
        step,
      );
    }
    const since = Date.parse(record.requestedAt);
    const escalateAfter = Date.parse(record.escalateAt) - since;
    const decideWithin = Date.parse(record.confirmBy) - since;
    const who = `the reporter or an approver`;
    const open = record;
    const confirmed = await awaitHuman(tracker, {
      step,
      label: `confirmation of ${step}`,
      who,
      since,
      escalated: record.escalated,
      ...(request.guard ? { guard: request.guard } : {}),
      escalateAfter,
      decideWithin,
      decideBy: record.confirmBy,
      answered: () => open.outcome !== undefined,
      escalation: {
        kind: 'action_needed',
        title: `Escalation: ${step} still needs doing by hand`,
        text: `Nobody confirmed "${instructions}" within ${formatDuration(escalateAfter)}. Without a confirmation by ${record.confirmBy} it counts as not done (timed_out).`,
        step,
      },
      onEscalate: () => (open.escalated = true),
      otherwise: 'counted as not done',
    });
    if (confirmed) {
      tracker.stepDone(step, 'done_by_hand', record.confirmedBy ?? 'unknown', `${instructions}: done by hand, confirmed by ${record.confirmedBy}: ${record.note}`);
    } else {
      record.outcome = 'timed_out';
      tracker.stepDone(step, 'timed_out', 'runbook', `${instructions}: nobody confirmed it within ${formatDuration(decideWithin)}; counted as not done`);
      tracker.attention(`${step} was not confirmed as done by hand: ${instructions}`);
    }
    tracker.publish();
    return confirmed;
  }
}

// -- resolve -------------------------------------------------------------------------------------


/** The commander's explicit `resolve`: accepted only while the incident waits for a human. */
export class Resolution {
  accepted?: ResolveRequest & { at: string };
  /** The wait for `resolve`, once it began (carried by continue-as-new). */
  waiting?: { since: number; escalated: boolean };
  guard?: HistoryGuard;

  constructor(private readonly tracker: IncidentTracker) {}

  validate(raw: unknown): ResolveRequest & { acting: Acting } {
    const req = parseRequest(resolveRequestSchema, raw);
    const { status } = this.tracker.state;
    if (status !== 'needs_human' || this.accepted) {
      throw new UpdateRefused(
        status === 'resolved' || this.accepted
          ? 'update: the incident is already resolved'
          : `update: the incident is ${status}; resolve is accepted once the playbook has finished and the incident needs a human (status needs_human)`,
      );
    }
    const acting = personOnIncident(this.tracker, { action: 'resolve', step: 'incident', field: 'resolvedBy', who: req.resolvedBy, text: actionText(req), signature: req.signature, nonce: req.nonce });
    return { ...req, acting };
  }

  resolve(raw: unknown): ResolveAnswer {
    const { acting, signature: _s, nonce: _n, ...req } = this.validate(raw);
    spendNonce(this.tracker.state, acting);
    this.accepted = { ...req, resolvedBy: acting.person, at: new Date().toISOString() };
    if (acting.person !== req.resolvedBy || acting.fingerprint) this.tracker.record('resolve', acting.person, `resolve accepted${actedAs(acting, req.resolvedBy)}`, acting.fingerprint ? { fingerprint: acting.fingerprint } : undefined);
    this.tracker.publish();
    return { resolvedBy: acting.person, message: `incident resolved by ${acting.person}` };
  }

  /** Wait up to `within` for `resolve`, escalating once like the gates; true when it came. */
  wait(items: readonly string[], escalateAfter: number, within: number): Promise<boolean> {
    this.waiting ??= { since: Date.now(), escalated: false };
    const waiting = this.waiting;
    const now = waiting.since;
    const decideBy = new Date(now + within).toISOString();
    const escalateAt = Math.min(escalateAfter, Math.floor(within / 2));
    return awaitHuman(this.tracker, {
      step: 'resolve',
      label: 'resolution by the incident commander',
      who: 'the reporter or an approver',
      since: now,
      escalated: waiting.escalated,
      ...(this.guard ? { guard: this.guard } : {}),
      escalateAfter: escalateAt,
      decideWithin: within,
      decideBy,
      answered: () => this.accepted !== undefined,
      escalation: {
        kind: 'needs_attention',
        title: 'Incident still needs a human',
        text: `Still open after ${formatDuration(escalateAt)}: ${items.join('; ')}. Without a resolve by ${decideBy} it closes unresolved.`,
      },
      onEscalate: () => (waiting.escalated = true),
      otherwise: 'closes unresolved',
    });
  }
}

// -- cancel ----------------------------------------------------------------------------------------

/** Our CLI's cancel, before it cancels the workflow: accepted while the incident is open, by the roster's policy. */
export function validateCancel(tracker: IncidentTracker, raw: unknown): CancelRequest & { acting: Acting } {
  const req = parseRequest(cancelRequestSchema, raw);
  const { status } = tracker.state;
  if (status === 'resolved' || status === 'cancelled') throw new UpdateRefused(`update: the incident is ${status}; nothing to cancel`);
  const acting = personOnIncident(tracker, { action: 'cancel', step: 'incident', field: 'cancelledBy', who: req.cancelledBy, text: actionText(req), signature: req.signature, nonce: req.nonce });
  return { ...req, acting };
}

export function cancelRequested(tracker: IncidentTracker, raw: unknown): CancelAnswer {
  const { acting, cancelledBy, reason } = validateCancel(tracker, raw);
  spendNonce(tracker.state, acting);
  tracker.state.cancelRequest = { by: acting.person, ...(reason ? { reason } : {}), at: new Date().toISOString(), ...(acting.fingerprint ? { fingerprint: acting.fingerprint } : {}) };
  tracker.record('cancel', acting.person, `cancellation asked${reason ? `: ${reason}` : ''}${actedAs(acting, cancelledBy)}`, acting.fingerprint ? { fingerprint: acting.fingerprint } : undefined);
  tracker.publish();
  return { cancelledBy: acting.person, message: `cancellation by ${acting.person} accepted; the CLI now cancels the workflow` };
}
