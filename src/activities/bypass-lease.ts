/**
 * The incident's side of the bypass lease (src/workflows/bypass-lease.ts), and the lease's look at
 * its holders. Workflow code cannot send an update to another workflow (only signals, and no
 * update-with-start), and a signal answers nothing; so an activity sends each request with the
 * worker's client as update-with-start: it creates the target's lease if none runs, and returns
 * only once the lease has applied the change (the flag set, extended or removed, or why not).
 * The incident passes an update id of its own: a retried activity is the same update to the server.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import {
  acquireBypass,
  extendBypassLease,
  leaseWorkflowId,
  reconcileBypass,
  releaseBypass,
  type LeaseAnswer,
  type LeaseFlag,
  type LeaseTarget,
  type ReleaseRequest,
} from '../workflows/bypass-lease-messages';

export type HolderLiveness = { workflowId: string; alive: true; runId: string } | { workflowId: string; alive: false; why: string };

const LEASE_WORKFLOW_TYPE = 'bypassLeaseWorkflow';
const HEARTBEAT_EVERY_MS = 5000;

function caller(): { workflowId: string; runId: string; taskQueue: string; client: Client } {
  const ctx = Context.current();
  const execution = ctx.info.workflowExecution;
  if (!execution) throw ApplicationFailure.create({ type: 'NotInWorkflow', message: 'the bypass lease is asked by a workflow only', nonRetryable: true });
  return { workflowId: execution.workflowId, runId: execution.runId, taskQueue: ctx.info.taskQueue, client: ctx.client };
}

/** Heartbeats while the lease works (a redeploy can take minutes); a cancelled activity stops waiting at once. */
async function whileWaiting<T>(run: () => Promise<T>): Promise<T> {
  const ctx = Context.current();
  const beat = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await Promise.race([run(), ctx.cancelled]);
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      throw ApplicationFailure.create({ type: 'UpdateRefused', message: `bypass lease: ${err.cause?.message ?? err.message}`, nonRetryable: true });
    }
    throw err;
  } finally {
    clearInterval(beat);
  }
}

/** A failed change, as the failure type the lease met (DeployAuthFailed, DeployUnavailable…): not retried here, the caller decides. */
function settled(answer: LeaseAnswer): LeaseAnswer {
  if (answer.ok) return answer;
  throw ApplicationFailure.create({ type: answer.error?.type ?? 'BypassLeaseFailed', message: answer.error?.message ?? 'the bypass lease could not apply the change', nonRetryable: true, details: [answer] });
}

function withStart(target: LeaseTarget, taskQueue: string, flag?: LeaseFlag) {
  return new WithStartWorkflowOperation(LEASE_WORKFLOW_TYPE, {
    workflowId: leaseWorkflowId(target),
    taskQueue,
    args: [{ target, ...(flag ? { flag } : {}) }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    staticSummary: `auth bypass lease: ${target.flagKey} on ${target.target}`,
  });
}

/** A lease started by a release or the sweep does not know the platform: it removes the flag unless someone holds it. */
const IN_DOUBT: LeaseFlag = { state: 'unknown', until: null };

export function createBypassLeaseActivities() {
  return {
    async acquireBypassLease(input: { target: LeaseTarget; incidentId: string; until: string; updateId: string }): Promise<LeaseAnswer> {
      const c = caller();
      const req = { workflowId: c.workflowId, runId: c.runId, incidentId: input.incidentId, until: input.until };
      return settled(await whileWaiting(() => c.client.workflow.executeUpdateWithStart(acquireBypass, { args: [req], updateId: input.updateId, startWorkflowOperation: withStart(input.target, c.taskQueue) })));
    },

    async extendBypassLease(input: { target: LeaseTarget; extendByMs: number; updateId: string }): Promise<LeaseAnswer> {
      const c = caller();
      const handle = c.client.workflow.getHandle(leaseWorkflowId(input.target));
      const req = { workflowId: c.workflowId, runId: c.runId, extendByMs: input.extendByMs };
      try {
        return settled(await whileWaiting(() => handle.executeUpdate(extendBypassLease, { args: [req], updateId: input.updateId })));
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw ApplicationFailure.create({ type: 'UpdateRefused', message: 'bypass lease: no lease runs for this flag; nothing to extend', nonRetryable: true });
        throw err;
      }
    },

    async releaseBypassLease(input: { target: LeaseTarget; updateId: string } & Pick<ReleaseRequest, 'reason' | 'verifyWithinMs' | 'probeTimeoutMs'>): Promise<LeaseAnswer> {
      const c = caller();
      const req: ReleaseRequest = { workflowId: c.workflowId, runId: c.runId, reason: input.reason, verifyWithinMs: input.verifyWithinMs, probeTimeoutMs: input.probeTimeoutMs };
      return settled(await whileWaiting(() => c.client.workflow.executeUpdateWithStart(releaseBypass, { args: [req], updateId: input.updateId, startWorkflowOperation: withStart(input.target, c.taskQueue, IN_DOUBT) })));
    },

    /** The sweep: the platform shows the flag (or cannot tell); the lease drops dead holders and removes what nobody holds. */
    async reconcileBypassLease(input: { target: LeaseTarget; flagSeen: boolean | 'unknown'; by: string }): Promise<LeaseAnswer> {
      const c = caller();
      return whileWaiting(() =>
        c.client.workflow.executeUpdateWithStart(reconcileBypass, { args: [{ flagSeen: input.flagSeen, by: input.by }], startWorkflowOperation: withStart(input.target, c.taskQueue, IN_DOUBT) }),
      );
    },

    /**
     * Whether each holder's run still runs. A run that continued-as-new is alive when the latest run
     * of its id runs (that run holds it now); any other end (terminated, reset, timed out, failed,
     * replaced by a new run) is not. Unknown to the server (retention passed): not alive.
     */
    async describeBypassHolders(input: { holders: { workflowId: string; runId: string }[] }): Promise<HolderLiveness[]> {
      const { client } = Context.current();
      return Promise.all(
        input.holders.map(async ({ workflowId, runId }): Promise<HolderLiveness> => {
          try {
            const run = await client.workflow.getHandle(workflowId, runId).describe();
            if (run.status.name === 'RUNNING') return { workflowId, alive: true, runId };
            if (run.status.name !== 'CONTINUED_AS_NEW') return { workflowId, alive: false, why: `run ${runId} is ${run.status.name}` };
            const latest = await client.workflow.getHandle(workflowId).describe();
            if (latest.status.name === 'RUNNING') return { workflowId, alive: true, runId: latest.runId };
            return { workflowId, alive: false, why: `run ${runId} continued as new and its latest run ${latest.runId} is ${latest.status.name}` };
          } catch (err) {
            if (err instanceof WorkflowNotFoundError) return { workflowId, alive: false, why: `run ${runId} is unknown to the server` };
            throw err;
          }
        }),
      );
    },
  };
}

export type BypassLeaseActivities = ReturnType<typeof createBypassLeaseActivities>;
