/**
 * What `npm run reconcile` and `npm run revoke` share: start a long-running workflow under an id of
 * its own (an id already used is refused), say how to follow it, and follow it to its outcome,
 * polling its progress on the way (exit code 1 unless the outcome is `succeeded`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client, type Workflow, type WorkflowHandle } from '@temporalio/client';
import type { Env } from '../config';
import { terminalLine } from '../render-safe';

/** One line (or one JSON document) to stdout; text lines are escaped by the caller with `terminalLine`. */
export const say = (line: string) => process.stdout.write(`${line}\n`);

/** A workflow whose result says how it went. */
type RunWorkflow = (...args: never[]) => Promise<{ outcome: string }>;

/** One kind of run: its workflow, what to call it, its CLI, and its result as lines. */
export interface RunKind<W extends RunWorkflow & Workflow> {
  workflow: W;
  /** `reconciliation`, `revocation`: the word in "started …" and "failed: … stopped". */
  noun: string;
  /** The command that follows it, e.g. `npm run reconcile`. */
  command: string;
  resultLines: (result: Awaited<ReturnType<W>>) => string[];
}

export interface StartOptions<W extends Workflow> {
  workflowId: string;
  args: Parameters<W>;
  dryRun: boolean;
  /** What to add to the refusal of an id already used (a command that shows that workflow). */
  seeExisting?: string;
  /** Where the two lines go (stderr when stdout carries JSON). */
  out?: (line: string) => void;
}

/** Starts the run (one id, one run: an id already used, even by a finished run, is refused) and says how to follow it. */
export async function startRun<W extends RunWorkflow & Workflow>(client: Client, env: Env, kind: RunKind<W>, o: StartOptions<W>): Promise<void> {
  try {
    // `args` was checked against W by StartOptions<W>; the SDK's conditional option type cannot see that for a generic W.
    const workflow: Workflow = kind.workflow;
    await client.workflow.start(workflow, { taskQueue: env.TEMPORAL_TASK_QUEUE, workflowId: o.workflowId, args: o.args, workflowIdReusePolicy: 'REJECT_DUPLICATE' });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    throw new Error(`--id: a workflow ${o.workflowId} already exists in namespace ${env.TEMPORAL_NAMESPACE}: pick another${o.seeExisting ?? ''}`);
  }
  const out = o.out ?? say;
  out(terminalLine(`started ${o.dryRun ? 'DRY RUN ' : ''}${kind.noun} ${o.workflowId}`));
  out(terminalLine(`follow it: ${kind.command} -- progress ${o.workflowId}`));
}

export interface FollowOptions {
  everyMs: number;
  /** One look at the progress. A failure is ignored: between runs (continue-as-new) or before the first workflow task the query may fail. */
  poll: () => Promise<void>;
  /** After the run ended, before its result is printed (e.g. the last state of a progress bar). */
  settle?: () => Promise<void>;
  /** The result as `{"result": …}` (or `{"error": …}`) instead of lines. */
  json?: boolean;
}

/** Polls until the run completes, then prints its result, or how it failed; exit code 1 unless the outcome is `succeeded`. */
export async function followRun<W extends RunWorkflow & Workflow>(handle: WorkflowHandle<W>, kind: RunKind<W>, o: FollowOptions): Promise<void> {
  let done = false;
  const result = handle.result().finally(() => {
    done = true;
  });
  result.catch(() => undefined);
  while (!done) {
    await o.poll().catch(() => undefined);
    await Promise.race([result.catch(() => undefined), sleep(o.everyMs)]);
  }
  await o.settle?.();
  try {
    const r = (await result) as Awaited<ReturnType<W>>;
    if (o.json) say(JSON.stringify({ result: r }));
    else for (const line of kind.resultLines(r)) say(terminalLine(line));
    if (r.outcome !== 'succeeded') process.exitCode = 1;
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? (err.cause?.message ?? err.message) : String(err);
    say(o.json ? JSON.stringify({ error: cause }) : terminalLine(`failed: ${kind.noun} stopped: ${cause}`));
    process.exitCode = 1;
  }
}
