/**
 * The runbook's playbooks, one per incident category (DESIGN.md's table), as code that reads like
 * the runbook. The driver (`incidentWorkflow`) does what every incident shares: the incident
 * notice, `mitigating`, `monitoring`, the review. A playbook holds only what is particular to its
 * category: one line to ask, one line to act, the machinery behind `IncidentRun`. What counts as
 * fixed, the gates and the severity of each category are in `CATEGORIES` (domain.ts). A step the
 * worker cannot do goes to a person (`byHand`): never skipped silently, never reported as success.
 */
import type { DiagnosticKind, Remedy } from '../diagnostics/rules';
import { formatDuration, type GatedStep, type IncidentCategory, type ManualStep } from '../domain';
import type { BypassStep } from './incident-bypass';
import type { DiagnosticsStep } from './incident-diagnostics';
import type { ReconciliationStep } from './incident-reconcile';
import { remedyRequest, type Diagnosed, type RemedyStep } from './incident-remedies';
import type { RollbackStep } from './incident-rollback';
import type { RevocationStep } from './incident-revocation';
import type { RotationStep } from './incident-rotation';
import type { GateOutcome, StepRequest } from './incident-types';
import type { VerificationStep } from './incident-verification';

/** What a playbook can do: ask and record here, act through one field per capability. Implemented by `Incident` (incident-run.ts). */
export interface IncidentRun {
  /** Ask the approvers; escalates, then takes the safe default (`timed_out`: nothing happens). */
  approval(step: GatedStep, title: string): Promise<GateOutcome>;
  /** An optional step: the input's request, or one sent with `requestStep` before the window closes. */
  optionalRequest(step: GatedStep, what: string): Promise<StepRequest | undefined>;
  /**
   * A person does the step and confirms with `confirmStep` (escalation and timeout like a gate):
   * the fallback where the worker cannot do it. True when confirmed; the steps that depend on it wait for this.
   */
  byHand(step: ManualStep, instructions: string): Promise<boolean>;
  /** A step nothing automates: recorded as `not_automated` for a human to do. */
  notAutomatedYet(step: string, what: string, details?: Record<string, unknown>): void;
  /** Record a step that does not apply this time, and why. */
  notNeeded(step: string, why: string): void;
  /** Record a step not run because a step it depends on was not done (needs attention). */
  skipped(step: string, why: string): void;
  /** The users the reporter named as affected (session_issues). */
  readonly affectedUserIds: readonly string[];

  readonly diagnostics: DiagnosticsStep;
  /** The recovery watch and the verification of a fix (incident-verification.ts). */
  readonly verification: VerificationStep;
  /** The emergency auth bypass (incident-bypass.ts). */
  readonly bypass: BypassStep;
  /** The secret-key rotation (incident-rotation.ts). */
  readonly rotation: RotationStep;
  /** Session revocation through `revokeSessionsWorkflow` (incident-revocation.ts). */
  readonly revocation: RevocationStep;
  /** User reconciliation through `reconcileUsersWorkflow` (incident-reconcile.ts). */
  readonly reconciliation: ReconciliationStep;
  /** The rollback to the last good deployment (incident-rollback.ts). */
  readonly rollback: RollbackStep;
  /** The remedy of the diagnosis's failing check, and its verification (incident-remedies.ts). */
  readonly remedies: RemedyStep;
}

/**
 * A verified rollback can still be the wrong call (it brought back something the bad build had
 * fixed): its undo, a promote of the deployment that was live, is offered for a while as an
 * optional step, asked for by one person and approved by another, like any other.
 */
async function offerUndo(run: IncidentRun): Promise<void> {
  const r = run.rollback.undoable;
  if (!r) return;
  const what = `promote ${r.fromDeploymentId} back (undo the rollback to ${r.toDeploymentId}), should the rollback itself have broken something`;
  const request = await run.optionalRequest('undo_rollback', what);
  if (!request) return;
  const decision = await run.approval('undo_rollback', `undo the rollback: promote ${r.fromDeploymentId} back in place of ${r.toDeploymentId}; the failure it fixed may come back${request.reason ? ` (asked: ${request.reason})` : ''}`);
  if (decision === 'approved') await run.rollback.undo('undo_rollback');
}

/**
 * The remedy of a failing check applied as the rule table says (rules.ts): an instance setting
 * after its approval, the lifetime by hand when no Platform API token is configured, a step by
 * hand confirmed. `not_applicable` for no remedy or a revocation (the playbook's own path).
 */
async function applyRemedy(run: IncidentRun, diagnosed: Diagnosed, remedy: Remedy | null): Promise<GateOutcome | 'not_applicable'> {
  const check = diagnosed?.checks.find((c) => c.id === remedy?.check);
  if (!remedy || !check) return 'not_applicable';
  switch (remedy.kind) {
    case 'allowed_origins': {
      const decision = await run.approval('update_allowed_origins', remedyRequest(check, remedy));
      if (decision === 'approved') await run.remedies.applyAllowedOrigins(remedy);
      return decision;
    }
    case 'session_lifetime': {
      if (await run.remedies.sessionSettingsAutomated()) {
        const decision = await run.approval('update_session_lifetime', `${remedyRequest(check, remedy)} (through Clerk's Platform API: a dry run, then the change on the config version read)`);
        if (decision === 'approved') await run.remedies.applySessionLifetime(remedy);
        return decision;
      }
      const done = await run.byHand('update_session_lifetime', `${remedy.changes}: in the Clerk Dashboard, Configure → Sessions, set "Maximum lifetime" to ${formatDuration(remedy.maxLifetimeMs)}${remedy.inactivityTimeoutMs !== null ? ` and "Inactivity timeout" to ${formatDuration(remedy.inactivityTimeoutMs)}` : ''} (check ${check.id}: ${check.evidence})`);
      return done ? 'approved' : 'timed_out';
    }
    case 'deployed_publishable_key': {
      if (await run.remedies.deployedEnvAutomated()) {
        const decision = await run.approval('update_deployed_env', remedyRequest(check, remedy));
        if (decision === 'approved') await run.remedies.applyDeployedPublishableKey(remedy);
        return decision;
      }
      const done = await run.byHand('update_deployed_env', `set the app's ${remedy.env} to the publishable key of the instance whose Frontend API is ${remedy.host} (the worker's CLERK_PUBLISHABLE_KEY; Dashboard → API keys), then redeploy production (check ${check.id}: ${check.evidence})`);
      return done ? 'approved' : 'timed_out';
    }
    case 'by_hand': {
      const done = await run.byHand('remedy_by_hand', `${remedy.instructions} (check ${check.id}: ${check.evidence})`);
      return done ? 'approved' : 'timed_out';
    }
    case 'targeted_revocation':
      return 'not_applicable';
  }
}

/** `verify_remedy`: the check that failed run again once the remedy is in (its decision approved), else why it was not. */
async function verifyRemedy(run: IncidentRun, kind: DiagnosticKind, remedy: Remedy, decision: GateOutcome | undefined): Promise<void> {
  if (decision !== 'approved') return run.notNeeded('verify_remedy', `the remedy (${remedy.kind}) was not applied (${decision ?? 'no decision'})`);
  await run.remedies.verify(kind, remedy, { userIds: kind === 'session_issues' ? [...run.affectedUserIds] : [], since: Date.now() });
}

/**
 * After a verified rollback, the diagnosis again: a check that still fails (one a rollback does not
 * change: the instance's origins, the keys in the environment) gets its remedy, verified by that check.
 * While a remedy is chosen, the incident is fixed only once `verify_remedy` succeeds.
 */
async function afterRollback(run: IncidentRun): Promise<void> {
  const again = await run.diagnostics.run('middleware_failure');
  const remedy = await run.remedies.propose(again);
  if (!remedy || remedy.kind === 'targeted_revocation') return;
  const decision = await applyRemedy(run, again, remedy);
  await verifyRemedy(run, 'middleware_failure', remedy, decision === 'not_applicable' ? undefined : decision);
}

export interface Playbook {
  /** While the incident is `mitigating`. Returns the decision that monitoring depends on, if any. */
  mitigate(run: IncidentRun): Promise<GateOutcome | undefined>;
  /** While the incident is `monitoring`, given what `mitigate` returned. */
  monitor?(run: IncidentRun, decision: GateOutcome | undefined): Promise<void>;
}

export const PLAYBOOKS: Record<IncidentCategory, Playbook> = {
  clerk_outage: {
    async mitigate(run) {
      const bypass = await run.approval('emergency_bypass', 'turn on the emergency auth bypass (time-boxed) while Clerk is down');
      if (bypass === 'approved' && (await run.bypass.on()) === undefined) {
        await run.byHand('emergency_bypass', 'turn on the emergency auth bypass flag on the deployment platform');
      }
      return bypass;
    },
    async monitor(run, bypass) {
      // Automated: off always runs (recovery, expiry, cancel, failure), verified, inside.
      if (run.bypass.automated) return run.bypass.watchWhileOn();
      await run.verification.watchRecovery();
      // Asked even when the bypass was never confirmed on: someone may have turned it on anyway.
      if (bypass === 'approved') await run.byHand('bypass_off', 'turn the emergency auth bypass off');
      else run.notNeeded('bypass_off', `the bypass was not turned on (${bypass})`);
    },
  },

  key_compromise: {
    async mitigate(run) {
      const rotation = await run.approval('rotate_secret_key', 'rotate the Clerk secret key: new key in, verify, old key out');
      if (rotation === 'approved') {
        const rotated = await run.rotation.rotateSecretKey();
        // Revoking while the leaked key still works ends nothing: whoever holds it signs in again.
        if (!rotated) {
          run.skipped('revoke_all_sessions', 'the rotation was not confirmed, so the leaked key may still be valid; rotate it, then revoke every session');
          return undefined;
        }
      }
      const revocation = await run.approval('revoke_all_sessions', 'revoke every active session of the instance');
      if (revocation === 'approved') await run.revocation.revokeSessions('revoke_all_sessions', { type: 'all' });
      return undefined;
    },
  },

  middleware_failure: {
    async mitigate(run) {
      const diagnosed = await run.diagnostics.run('middleware_failure');
      const proposal = await run.rollback.propose(diagnosed);
      if (proposal.kind === 'rollback') {
        const rollback = await run.approval('rollback', proposal.request);
        if (rollback === 'approved') await run.rollback.rollBack(proposal);
        return rollback;
      }
      // No rollback on this worker (proposal.why is on the timeline): the failing check's remedy
      // where the runbook can apply it (an instance setting), else the operator fixes it and confirms.
      const remedy = await run.remedies.propose(diagnosed);
      if (remedy && remedy.kind !== 'by_hand' && remedy.kind !== 'targeted_revocation') {
        const applied = await applyRemedy(run, diagnosed, remedy);
        if (applied !== 'not_applicable') return applied;
      }
      const hint = diagnosed && diagnosed.summary.verdict !== 'ok' ? `; diagnostics: ${diagnosed.summary.text}` : '';
      return run.approval('operator_action', `confirm the fix (rollback, redeploy or key update) is live, so it can be verified${hint}`);
    },
    async monitor(run, action) {
      if (action !== 'approved') run.notNeeded('verify_fix', `no fix was confirmed or rolled back (${action})`);
      else if (!run.rollback.attempted) {
        await run.verification.verifyFix('verify_fix');
        // The operator's fix (or the runbook's remedy) is verified by the check that failed too; verify_fix just probed.
        const remedy = run.remedies.chosen;
        if (remedy) await run.remedies.verify('middleware_failure', remedy, { userIds: [], since: Date.now(), probed: true });
      } else if (await run.rollback.verify('verify_fix')) {
        await afterRollback(run);
        await offerUndo(run);
      }
    },
  },

  session_issues: {
    // The remedy follows the failing check (rules.ts): an instance setting, a step by hand, or, only when the sessions themselves are bad, a revocation.
    async mitigate(run) {
      const diagnosed = await run.diagnostics.run('session_issues', [...run.affectedUserIds]);
      const remedy = await run.remedies.propose(diagnosed);
      const applied = await applyRemedy(run, diagnosed, remedy);
      if (applied !== 'not_applicable') return applied;
      const proposal = remedy?.kind === 'targeted_revocation' ? ` (diagnostics propose it for ${remedy.userIds.join(', ')}: ${remedy.changes})` : '';
      const request = await run.optionalRequest('targeted_revocation', `end the sessions of the affected users${proposal}`);
      if (request?.userIds) {
        const decision = await run.approval('targeted_revocation', `revoke the sessions of ${request.userIds.length} user(s)`);
        if (decision === 'approved') await run.revocation.revokeSessions('targeted_revocation', { type: 'users', userIds: request.userIds });
        return decision;
      }
      return undefined;
    },
    async monitor(run, decision) {
      const remedy = run.remedies.chosen;
      if (!remedy || remedy.kind === 'targeted_revocation') return run.remedies.verifyRevocation();
      await verifyRemedy(run, 'session_issues', remedy, decision);
    },
  },

  webhook_backlog: {
    async mitigate(run) {
      if (await run.reconciliation.reconcileUsers('reconcile_webhooks')) return undefined;
      await run.byHand(
        'reconcile_webhooks',
        "reconcile users between Clerk and the app's store, replay the missing events (Svix portal link: webhooks.generateSvixAuthURL)",
      );
      return undefined;
    },
  },
};
