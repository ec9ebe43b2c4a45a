/**
 * What every capability of a playbook shares: the incident's tracker and input, the list of
 * compensations a cancellation unwinds, steps done by hand, and each gate's own timeouts.
 */
import { isCancellation } from '@temporalio/workflow';
import type { GatedStep, ManualStep, ValidIncidentInput } from '../domain';
import type { HistoryGuard } from './incident-continue';
import type { ManualSteps } from './incident-requests';
import { errorMessage, type IncidentTracker } from './incident-state';

interface Compensation {
  step: string;
  title: string;
  run: () => Promise<unknown>;
}

/** The steps applied so far, each with its undo; cancelling the incident unwinds them in reverse. */
export class Compensations {
  private readonly undo: Compensation[] = [];

  constructor(private readonly tracker: IncidentTracker) {}

  push(step: string, title: string, run: () => Promise<unknown>): void {
    this.undo.push({ step, title, run });
  }

  /** Forget the undo of `step` (it was undone another way, e.g. the bypass turned off and verified). */
  drop(step: string): void {
    this.undo.splice(0, this.undo.length, ...this.undo.filter((u) => u.step !== step));
  }

  /**
   * Run a step that changes something; on success its compensation joins the list. A failed step
   * is recorded and needs attention.
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
    while (this.undo.length) await this.run(this.undo.pop() as Compensation, 'cancellation');
  }

  /** Undo `step` now, because a later step failed (the rollback that did not fix it); like a cancellation's undo. */
  async undoNow(step: string, why = `${step} did not fix it`): Promise<void> {
    // Each stays on the list until it ran: a cancel meanwhile leaves it to the cancellation's undo.
    for (const u of this.undo.filter((x) => x.step === step).reverse()) {
      await this.run(u, why);
      this.undo.splice(this.undo.indexOf(u), 1);
    }
  }

  private async run(u: Compensation, why: string): Promise<void> {
    this.tracker.waitFor(`${why}: ${u.title} (compensating ${u.step})`);
    try {
      await u.run();
      this.tracker.stepDone(u.step, 'compensated', 'runbook', u.title);
    } catch (err) {
      if (isCancellation(err)) throw err;
      const note = `compensation of ${u.step} failed (${u.title}): ${errorMessage(err)}; a human must undo it`;
      this.tracker.stepDone(u.step, 'failed', 'runbook', note, { compensation: true });
      this.tracker.attention(note);
      await this.tracker.notify('needs_attention', `Compensation failed: ${u.step}`, note);
    }
  }
}

/** What a capability module is given by the incident. */
export interface IncidentContext {
  readonly tracker: IncidentTracker;
  readonly input: ValidIncidentInput;
  readonly compensations: Compensations;
  /** When the incident may continue as new: its waits are the safe points (incident-continue.ts). */
  readonly guard: HistoryGuard;
  /** A person does `step` and confirms it (escalation and timeout like a gate); true when confirmed. */
  byHand(step: ManualStep, instructions: string): Promise<boolean>;
  /** The gate timeouts of `step`: its own override in `timeouts.steps`, else the incident's. */
  gateTimeouts(step: GatedStep): { escalateAfter: number; decideWithin: number };
}

/** The context over `tracker` and `input`; `manualSteps` holds the steps done by hand. */
export function incidentContext(tracker: IncidentTracker, input: ValidIncidentInput, manualSteps: ManualSteps, guard: HistoryGuard): IncidentContext {
  return {
    tracker,
    input,
    compensations: new Compensations(tracker),
    guard,
    byHand(step, instructions) {
      // The incident's own gate timeouts; `timeouts.steps` overrides are for the approval gates.
      const { escalateAfter, decideWithin } = input.timeouts;
      return manualSteps.byHand({ step, instructions, escalateAfter, decideWithin, guard });
    },
    gateTimeouts(step) {
      const own = input.timeouts.steps[step];
      return {
        escalateAfter: own?.escalateAfter ?? input.timeouts.escalateAfter,
        decideWithin: own?.decideWithin ?? input.timeouts.decideWithin,
      };
    },
  };
}
