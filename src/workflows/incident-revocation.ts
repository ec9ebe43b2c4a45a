/**
 * Session revocation from an incident: `revokeSessionsWorkflow` as a child, its totals, the users
 * not found and the failures recorded as the step's outcome. Dry-run flows through.
 */
import { executeChild, isCancellation } from '@temporalio/workflow';
import type { GatedStep } from '../domain';
import { errorMessage } from './incident-state';
import type { IncidentContext } from './incident-steps';
import { describeScope, revokeSessionsWorkflow, type RevocationScope } from './revoke-sessions';

export interface RevocationStep {
  /** End sessions through `revokeSessionsWorkflow` (a child workflow), approved by the gate of `step`. */
  revokeSessions(step: GatedStep, scope: RevocationScope): Promise<void>;
}


/** The first ids of a list, and how many more there are: `user_a, user_b and 3 more`. */
function listIds(ids: readonly string[], total: number, shown = 20): string {
  const head = ids.slice(0, shown).join(', ');
  return total > Math.min(ids.length, shown) ? `${head} and ${total - Math.min(ids.length, shown)} more` : head;
}

export class Revocation implements RevocationStep {
  constructor(private readonly ctx: IncidentContext) {}

  async revokeSessions(step: GatedStep, scope: RevocationScope): Promise<void> {
    const gate = [...this.ctx.tracker.state.gates].reverse().find((g) => g.step === step);
    const approvedBy = gate?.approvals.map((a) => a.approver).join(' and ') ?? 'nobody';
    const what = `the sessions of ${describeScope(scope)}`;
    const dry = this.ctx.input.dryRun ? ' (dry run)' : '';
    const childId = `${this.ctx.tracker.state.incidentId}-${step}`;
    this.ctx.tracker.waitFor(`${step}: revoking ${what}${dry} in child workflow ${childId}`);
    try {
      const result = await executeChild(revokeSessionsWorkflow, {
        workflowId: childId,
        args: [
          {
            scope,
            dryRun: this.ctx.input.dryRun,
            requestedBy: gate?.requestedBy ?? this.ctx.tracker.state.reporter,
            reason: `incident ${this.ctx.tracker.state.incidentId} (${this.ctx.tracker.state.category}): ${this.ctx.tracker.state.summary}; approved by ${approvedBy}`,
            incidentId: this.ctx.tracker.state.incidentId,
            ...(this.ctx.input.excludeUserIds.length ? { excludeUserIds: this.ctx.input.excludeUserIds } : {}),
          },
        ],
        staticSummary: `${step}: revoke ${what}${dry} for incident ${this.ctx.tracker.state.incidentId}`,
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
      this.ctx.tracker.stepDone(step, outcome, 'runbook', note, details);
      if (outcome !== 'succeeded') this.ctx.tracker.attention(`${step} ${outcome}: ${missing.join('; ')} (see ${childId})`);
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.ctx.tracker.stepDone(step, 'failed', 'runbook', `revocation workflow ${childId} failed: ${errorMessage(err)}`, { childWorkflowId: childId });
      this.ctx.tracker.attention(`${step} failed: ${errorMessage(err)}`);
    }
  }
}
