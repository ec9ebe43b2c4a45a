/**
 * The rollback as the incident's state shows it, read off its steps and timeline: pure wording
 * shared by the workflow (incident-rollback.ts, the closing message) and the review.
 */

/** The promote command a rolled-back Vercel project needs before new builds take production again (docs/rollback.md). */
export const promoteCommand = (deploymentId: string) => `vercel promote ${deploymentId} --scope <team> (or POST /v10/projects/{projectId}/promote/${deploymentId})`;

interface RollbackView {
  steps: readonly { step: string; outcome: string; at: string }[];
  timeline: readonly { step: string; time: string; details?: Record<string, unknown> }[];
}

/** A rollback this incident made and did not undo: both deployment ids, and the failure's minutes once verified. */
export interface RollbackRecord {
  fromDeploymentId: string;
  toDeploymentId: string;
  at: string;
  /** From the bad build (or the report, if earlier) to the verification; absent when it was not verified. */
  failureMinutes?: number;
  /** A new build of this deployment's source with today's env (every earlier build was refused for its env), not an instant rollback. */
  rebuiltFrom?: string;
  /** The platform said new production builds no longer take production (Vercel after an instant rollback) until a promote. */
  autoPromoteOff: boolean;
}

export function rollbackRecord(state: RollbackView): RollbackRecord | undefined {
  const last = state.steps.filter((s) => s.step === 'rollback').at(-1);
  if (last?.outcome !== 'succeeded') return undefined;
  const lines = state.timeline.filter((e) => e.step === 'rollback' && typeof e.details?.toDeploymentId === 'string');
  const done = lines.filter((e) => e.details?.outcome === 'succeeded').at(-1);
  if (!done) return undefined;
  const verified = lines.filter((e) => typeof e.details?.failureMinutes === 'number').at(-1);
  return {
    fromDeploymentId: String(done.details?.fromDeploymentId),
    toDeploymentId: String(done.details?.toDeploymentId),
    at: done.time,
    autoPromoteOff: done.details?.autoAssignCustomDomains === false,
    ...(typeof done.details?.rebuiltFrom === 'string' ? { rebuiltFrom: done.details.rebuiltFrom } : {}),
    ...(verified ? { failureMinutes: verified.details?.failureMinutes as number } : {}),
  };
}

/** The closing message's line about auto-promotion, when this incident rolled production back and did not undo it. */
export function rollbackClosingNote(state: RollbackView): string | undefined {
  const r = rollbackRecord(state);
  // A rebuild leaves auto-assignment on (or a promote turned it back on), a webhook platform says nothing: nothing to say.
  if (!r?.autoPromoteOff) return undefined;
  return r && `production was rolled back to ${r.toDeploymentId}, so Vercel does not auto-promote new production builds (auto-promote is off) until someone promotes: ${promoteCommand(r.toDeploymentId)}`;
}
