/**
 * The runbook's playbooks, one per incident category (DESIGN.md's table), as code that reads like
 * the runbook. The driver (`incidentWorkflow`) does what every incident shares: the incident
 * notice, `mitigating`, `monitoring`, the review. A playbook holds only what is particular to its
 * category. Steps that later issues build are `notAutomatedYet(...)`: recorded in the timeline as
 * `not_automated`, never skipped silently and never reported as success.
 */
import type { GatedStep, IncidentCategory, ManualStep } from '../domain';
import type { RevocationScope } from './revoke-sessions';
import type { Check, DiagnosticsSummary } from '../diagnostics/rules';
import type { GateOutcome, StepRequest } from './incident-types';

/** What a playbook can do; implemented by `Incident` (incident-run.ts). */
export interface IncidentRun {
  /** Ask the approvers; escalates, then takes the safe default (`timed_out`: nothing happens). */
  approval(step: GatedStep, title: string): Promise<GateOutcome>;
  /** A step no issue has built yet: recorded as `not_automated` for a human to do by hand. */
  notAutomatedYet(step: string, what: string, details?: Record<string, unknown>): void;
  /** Record a step that does not apply this time, and why. */
  notNeeded(step: string, why: string): void;
  /** Record a step not run because a step it depends on was not done (needs attention). */
  skipped(step: string, why: string): void;
  /**
   * A step the runbook cannot do yet: a person does it and confirms with `confirmStep` (escalation
   * and timeout like a gate). True when confirmed; the steps that depend on it wait for this.
   */
  byHand(step: ManualStep, instructions: string): Promise<boolean>;
  /** Poll the Clerk status page on a durable timer until it says `none`; false when it never did. */
  watchRecovery(): Promise<boolean>;
  /**
   * The emergency auth bypass on, time-boxed and verified (incident-bypass.ts). Undefined when it
   * is not automated here (an incident older than the patch, or no deploy adapter): do it by hand.
   */
  bypassOn(): Promise<boolean | undefined>;
  /** Whether `bypassOn` ran the automated bypass (then its off is automated too). */
  readonly bypassAutomated: boolean;
  /** With the automated bypass: watch for recovery while it is on, turn it off (always), keep watching if it expired first. */
  watchWhileBypassed(): Promise<void>;
  /** Re-run the triage probes; true when the incident's category is no longer seen. */
  verifyFix(step: string): Promise<boolean>;
  /**
   * Rotate the Clerk secret key (incident-rotation.ts): new key, verify, push, retire, prove the old
   * key dead, exposure audit. True when the old key is proven dead (older incidents: confirmed by hand).
   */
  rotateSecretKey(): Promise<boolean>;
  /** End sessions through `revokeSessionsWorkflow` (a child workflow); dry-run flows through. */
  revokeSessions(step: GatedStep, scope: RevocationScope): Promise<void>;
  /** An optional step: the input's request, or one sent with `requestStep` before the window closes. */
  optionalRequest(step: GatedStep, what: string): Promise<StepRequest | undefined>;
  /** Run the diagnostics of `kind` (for `userIds`' sessions); their summary, or undefined when they could not run. */
  diagnose(kind: 'middleware_failure' | 'session_issues', userIds?: string[]): Promise<{ summary: DiagnosticsSummary; checks: Check[] } | undefined>;
  /**
   * Reconcile the app's user store with Clerk through `reconcileUsersWorkflow` (a child workflow);
   * false when it cannot be automated — an incident started before it was (replay), or a worker with
   * no user store configured — and the step goes to a person.
   */
  reconcileUsers(step: ManualStep): Promise<boolean>;
  /** The users the reporter named as affected (session_issues). */
  readonly affectedUserIds: readonly string[];
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
      if (bypass === 'approved' && (await run.bypassOn()) === undefined) {
        await run.byHand('emergency_bypass', 'turn on the emergency auth bypass flag on the deployment platform');
      }
      return bypass;
    },
    async monitor(run, bypass) {
      // Automated: off always runs (recovery, expiry, cancel, failure), verified, inside.
      if (run.bypassAutomated) return run.watchWhileBypassed();
      await run.watchRecovery();
      // Asked even when the bypass was never confirmed on: someone may have turned it on anyway.
      if (bypass === 'approved') await run.byHand('bypass_off', 'turn the emergency auth bypass off');
      else run.notNeeded('bypass_off', `the bypass was not turned on (${bypass})`);
    },
  },

  key_compromise: {
    async mitigate(run) {
      const rotation = await run.approval('rotate_secret_key', 'rotate the Clerk secret key: new key in, verify, old key out');
      if (rotation === 'approved') {
        const rotated = await run.rotateSecretKey();
        // Revoking while the leaked key still works ends nothing: whoever holds it signs in again.
        if (!rotated) {
          run.skipped('revoke_all_sessions', 'the rotation was not confirmed, so the leaked key may still be valid; rotate it, then revoke every session');
          return undefined;
        }
      }
      const revocation = await run.approval('revoke_all_sessions', 'revoke every active session of the instance');
      if (revocation === 'approved') await run.revokeSessions('revoke_all_sessions', { type: 'all' });
      return undefined;
    },
  },

  middleware_failure: {
    async mitigate(run) {
      const diagnosed = await run.diagnose('middleware_failure');
      // The approvers see the most likely fix in the request itself.
      const hint = diagnosed && diagnosed.summary.verdict !== 'ok' ? `; diagnostics: ${diagnosed.summary.text}` : '';
      return run.approval('operator_action', `confirm the fix (rollback, redeploy or key update) is live, so it can be verified${hint}`);
    },
    async monitor(run, action) {
      if (action === 'approved') await run.verifyFix('verify_fix');
      else run.notNeeded('verify_fix', `no fix was confirmed (${action})`);
    },
  },

  session_issues: {
    async mitigate(run) {
      const diagnosed = await run.diagnose('session_issues', [...run.affectedUserIds]);
      // Sessions that end early point at the affected users' sessions: propose ending them.
      const corrupt = diagnosed?.checks.some((c) => c.id === 'session_lifetime' && (c.verdict === 'warn' || c.verdict === 'fail'));
      const proposal = corrupt && run.affectedUserIds.length ? ` (diagnostics propose it for ${run.affectedUserIds.join(', ')}: their sessions end early)` : '';
      const request = await run.optionalRequest('targeted_revocation', `end the sessions of the affected users${proposal}`);
      if (request?.userIds) {
        const decision = await run.approval('targeted_revocation', `revoke the sessions of ${request.userIds.length} user(s)`);
        if (decision === 'approved') await run.revokeSessions('targeted_revocation', { type: 'users', userIds: request.userIds });
      }
      return undefined;
    },
  },

  webhook_backlog: {
    async mitigate(run) {
      if (await run.reconcileUsers('reconcile_webhooks')) return undefined;
      await run.byHand(
        'reconcile_webhooks',
        "reconcile users between Clerk and the app's store, replay the missing events (Svix portal link: webhooks.generateSvixAuthURL)",
      );
      return undefined;
    },
  },
};
