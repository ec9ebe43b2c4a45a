/**
 * The rollback of `middleware_failure` (docs/rollback.md): propose the last good production
 * deployment (env-aware, rollback-candidate.ts), roll back after approval, confirm the switch by
 * the platform's alias job, then verify by the probes and the diagnostics check that failed. The
 * undo (a promote of the deployment that was live) is registered before the rollback is requested
 * and runs when the incident is cancelled or the verification fails. Workflow code: the I/O is in
 * the `deploy*`, `bypassSettings` activities.
 */
import { ActivityFailure, ApplicationFailure, isCancellation, proxyActivities, sleep } from '@temporalio/workflow';
import type { BypassActivities, DeployActivities } from '../activities';
import type { AliasStatus } from '../activities/deploy/types';
import { DEPLOYED_CHECKS, type Check, type DiagnosticsSummary } from '../diagnostics/rules';
import { formatDuration } from '../domain';
import { NON_RETRYABLE_ERROR_TYPES } from '../shared';
import type { Diagnostics } from './incident-diagnostics';
import { errorMessage } from './incident-state';
import type { IncidentContext } from './incident-steps';
import type { Verification } from './incident-verification';
import { redeployAndWait, type RedeployResult } from './deploy-wait';
import { promoteCommand, rollbackRecord, type RollbackRecord } from './rollback-record';
import { chooseRollbackCandidate, describeDeployment, RUNBOOK_MARKERS, writesFromMarkers, type CandidateDeployment, type HealthyObservation } from './rollback-candidate';

const acts = proxyActivities<DeployActivities & Pick<BypassActivities, 'bypassSettings'>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
});

/** Between two reads of the alias job; how long a job may take before the runbook stops waiting. */
const ALIAS_POLL_MS = 1000;
const ALIAS_WAIT_MS = 3 * 60_000;
/** Production deployments listed as candidates. */
const CANDIDATES_LISTED = 20;
/** How long a rebuild of a refused candidate's source may take to be READY. */
const REBUILD_READY_WITHIN_MS = 15 * 60_000;
const REBUILD_POLL_MS = 2000;

/**
 * What the approvers are asked, or why the worker cannot roll back (then the operator confirms a fix
 * by hand). `via`: an instant rollback to `candidate`, or (every earlier build refused for its env
 * alone) a new build of `candidate`'s source with today's env, put on production once READY, or
 * (`named`: an adapter that lists nothing, the signed webhook) a rollback to the deployment the
 * incident input names, which only the verification's probes can confirm.
 */
export type RollbackProposal =
  | { kind: 'rollback'; via: 'rollback' | 'redeploy' | 'named'; request: string; current: CandidateDeployment; candidate: CandidateDeployment; failingChecks: string[]; failureStartedAt: number }
  | { kind: 'manual'; why: string };

export interface RollbackStep {
  /** Find the candidate and phrase the approval; `manual` (with why, on the timeline) when this worker cannot roll back. */
  propose(diagnosed: { summary: DiagnosticsSummary; checks: Check[] } | undefined): Promise<RollbackProposal>;
  /** After approval: the undo registered, then the rollback and its alias job. True when production switched. */
  rollBack(proposal: Extract<RollbackProposal, { kind: 'rollback' }>): Promise<boolean>;
  /** A rollback was requested in this incident (approved, then tried): `verify` is the check of the fix. */
  readonly attempted: boolean;
  /** The probes and the failing diagnostics checks again; true when both pass. A failed verification promotes back. */
  verify(step: string): Promise<boolean>;
  /** The rollback in place (it succeeded and was not undone), whose undo can be offered. */
  readonly undoable: RollbackRecord | undefined;
  /** The offered undo, approved: promote the deployment that was live back, then check the fix again. True when that promote took. */
  undo(step: string): Promise<boolean>;
}

function refusalReason(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (!(cause instanceof ApplicationFailure) || cause.type !== 'DeployRollbackRefused') return undefined;
  const d = cause.details?.[0] as { reason?: unknown } | undefined;
  return typeof d?.reason === 'string' ? d.reason : 'other';
}

const terminal = (s: AliasStatus, to: string) => s.lastAliasRequest?.toDeploymentId === to && ['succeeded', 'failed', 'skipped'].includes(s.lastAliasRequest.jobStatus);

export class Rollback implements RollbackStep {
  /** What `propose` found (set again from the journal in a continued run). */
  proposal?: RollbackProposal;

  constructor(
    private readonly ctx: IncidentContext,
    private readonly verification: Verification,
    private readonly diagnostics: Diagnostics,
  ) {}

  private get tracker() {
    return this.ctx.tracker;
  }

  /** The runbook's own records of deployments it saw healthy: its bypass and rotation builds. */
  private healthy(): HealthyObservation[] {
    const out: HealthyObservation[] = [];
    const b = this.tracker.state.bypass;
    if (b?.deployment && b.verified.length) out.push({ deploymentId: b.deployment.id, at: Date.parse(b.onSince), source: 'bypass' });
    for (const e of this.tracker.state.timeline) {
      const id = e.step === 'push_new_key' && e.details?.outcome === 'succeeded' ? e.details.deploymentId : undefined;
      if (typeof id === 'string') out.push({ deploymentId: id, at: Date.parse(e.time), source: 'rotation' });
    }
    return out;
  }

  async propose(diagnosed: { summary: DiagnosticsSummary; checks: Check[] } | undefined): Promise<RollbackProposal> {
    this.proposal = await this.find(diagnosed);
    return this.proposal;
  }

  /** Why the operator confirms a fix by hand this time, on the timeline. */
  private manual(why: string): RollbackProposal {
    this.tracker.record('rollback', 'runbook', `no automated rollback: ${why}; an operator confirms the fix by hand`);
    return { kind: 'manual', why };
  }

  private async find(diagnosed: { summary: DiagnosticsSummary; checks: Check[] } | undefined): Promise<RollbackProposal> {
    // Only a failing check of what the deployment carries says a rollback can help (an unknown origin does not).
    const failingChecks = (diagnosed?.checks ?? []).filter((c) => c.verdict === 'fail' && DEPLOYED_CHECKS.includes(c.id)).map((c) => c.id);
    const triage = this.tracker.state.triage?.rule;
    // Only what the runbook itself sees failing justifies a rollback (and gives the verification its check).
    if (!failingChecks.length && (!triage || triage === 'all_clear')) return this.manual('neither the probes nor a check of what the deployment carries (keys, authorized parties, middleware and SDK) see the failure, so nothing says the deployment is at fault');
    this.tracker.waitFor('rollback: looking for the last good production deployment');
    try {
      const support = await acts.deployRollbackSupport.executeWithOptions({ summary: 'rollback: what the deploy adapter can do' }, []);
      if (!support.supported) return this.manual(support.reason);
      const named = this.ctx.input.rollback;
      if (!support.listsDeployments || !support.reportsAliasStatus) {
        if (!named) return this.manual(`the ${support.adapter} adapter cannot list deployments or report where production points, so the runbook cannot choose a candidate (name them in the incident input: "rollback": {"from": "<live>", "to": "<last good>"})`);
        return this.namedProposal(support.adapter, named, failingChecks, diagnosed);
      }
      const reported = this.tracker.state.timeline.find((e) => e.step === 'report')?.time;
      const failureStartedAt = reported ? Date.parse(reported) : Date.now();
      const status = await acts.deployAliasStatus.executeWithOptions({ summary: 'rollback: where production points now' }, []);
      const currentId = status.productionDeploymentId;
      if (!currentId) return this.manual('the platform does not say which deployment serves production');
      if (named && named.from !== currentId) return this.manual(`the incident input names ${named.from} as the deployment serving production, but the platform says ${currentId} is`);
      const all = await acts.deployListProductionDeployments.executeWithOptions({ summary: 'rollback: production deployments before the failure' }, [{ until: failureStartedAt, limit: CANDIDATES_LISTED }]);
      // A deployment named in the input is the only candidate (still checked for what the runbook changed).
      const listed = named ? all.filter((d) => d.id === named.to || d.id === currentId) : all;
      if (named && !listed.some((d) => d.id === named.to)) return this.manual(`the incident input names ${named.to} to roll back to, but the platform lists no READY production deployment ${named.to} from before the failure`);
      const writes = await acts.deployEnvWrites.executeWithOptions({ summary: "rollback: the runbook's own env writes (markers)" }, []);
      const settings = await acts.bypassSettings.executeWithOptions({ summary: 'rollback: the bypass flag key' }, []);
      const secretKeyName = writes.find((w) => w.comment && RUNBOOK_MARKERS.rotation.test(w.comment))?.key ?? 'CLERK_SECRET_KEY';
      const marked = writesFromMarkers(writes, { flagKey: settings.flagKey, secretKeyName });
      // A bypass this incident already removed is gone from the env: its own record adds it.
      const b = this.tracker.state.bypass;
      const pastBypass = b && b.adapter === 'vercel' && b.offAt ? [{ key: b.flagKey, onAt: Date.parse(b.onSince), offAt: Date.parse(b.offAt) }] : [];
      const now = Date.now();
      const choice = chooseRollbackCandidate({
        currentDeploymentId: currentId,
        deployments: listed,
        failureStartedAt,
        healthy: this.healthy(),
        rotations: marked.rotations,
        bypasses: [...marked.bypasses, ...pastBypass],
        flagKey: settings.flagKey,
        canRedeploy: support.redeploysFrom,
        now,
      });
      const refused = choice.refused.map((r) => `${describeDeployment(r.deployment, now)}: ${r.refusals.map((x) => x.reason).join('; ')}`);
      const details = { currentDeploymentId: currentId, refused: choice.refused.map((r) => ({ id: r.deployment.id, codes: r.refusals.map((x) => x.code) })) };
      const current = listed.find((d) => d.id === currentId) ?? { id: currentId, url: null, state: 'READY', createdAt: failureStartedAt };
      const diag = diagnosed && diagnosed.summary.verdict !== 'ok' ? `; diagnostics: ${diagnosed.summary.text}` : '';
      if (!choice.chosen && choice.redeploy) {
        // Every earlier build carries something the runbook changed (a dead key, the bypass flag): its source again, with today's env.
        const from = choice.redeploy.from;
        const request =
          `build ${describeDeployment(from, now)} again from its source with today's env and put it on production in place of ${describeDeployment(current, now)}: ` +
          `${choice.redeploy.why}; an instant rollback would serve it with its old env (refused: ${refused.join(' | ')})${diag}`;
        this.tracker.record('rollback', 'runbook', `candidate ${from.id} refused for its env only: proposing a rebuild of its source with today's env`, { ...details, candidateDeploymentId: from.id, basis: 'rebuild' });
        return { kind: 'rollback', via: 'redeploy', request, current, candidate: from, failingChecks, failureStartedAt };
      }
      if (!choice.chosen) return this.manual(`no deployment to roll back to: ${choice.none ?? 'none'}`);
      const candidate = choice.chosen.deployment;
      const request =
        `roll production back from ${describeDeployment(current, now)} to ${describeDeployment(candidate, now)}: chosen because ${choice.chosen.why}` +
        `${refused.length ? `; refused: ${refused.join(' | ')}` : ''}${diag}`;
      this.tracker.record('rollback', 'runbook', `candidate ${candidate.id} (${choice.chosen.basis}): ${choice.chosen.why}`, { ...details, candidateDeploymentId: candidate.id, basis: choice.chosen.basis });
      return { kind: 'rollback', via: 'rollback', request, current, candidate, failingChecks, failureStartedAt };
    } catch (err) {
      if (isCancellation(err)) throw err;
      return this.manual(`the deployment platform could not be read (${errorMessage(err)})`);
    }
  }

  /** The rollback to the deployment the incident input names, through an adapter that cannot list or confirm (the signed webhook). */
  private namedProposal(
    adapter: string,
    named: { from: string; to: string },
    failingChecks: string[],
    diagnosed: { summary: DiagnosticsSummary } | undefined,
  ): RollbackProposal {
    const reported = this.tracker.state.timeline.find((e) => e.step === 'report')?.time;
    const failureStartedAt = reported ? Date.parse(reported) : Date.now();
    const deployment = (id: string): CandidateDeployment => ({ id, url: null, state: 'unknown', createdAt: failureStartedAt });
    const diag = diagnosed && diagnosed.summary.verdict !== 'ok' ? `; diagnostics: ${diagnosed.summary.text}` : '';
    const request =
      `roll production back from ${named.from} to ${named.to} through the ${adapter} adapter, as the incident input names them: the platform lists nothing, ` +
      `so the runbook neither chose ${named.to} nor checked its env for a retired key or the bypass flag; the probes alone will confirm it${diag}`;
    this.tracker.record('rollback', 'runbook', `candidate ${named.to} named in the incident input (the ${adapter} adapter cannot list deployments)`, { currentDeploymentId: named.from, candidateDeploymentId: named.to, basis: 'named' });
    return { kind: 'rollback', via: 'named', request, current: deployment(named.from), candidate: deployment(named.to), failingChecks, failureStartedAt };
  }

  /**
   * A continued run: the undo again when the last rollback was neither confirmed nor seen failed
   * (its alias job had not finished), as the run before had it.
   */
  restore(): void {
    const last = [...this.tracker.state.timeline].reverse().find((e) => e.step === 'rollback' && e.details?.outcome !== undefined);
    const d = last?.details;
    if (typeof d?.fromDeploymentId !== 'string' || typeof d.toDeploymentId !== 'string') return;
    // A named rollback accepted by the receiver and not yet confirmed by the probes: its undo as before.
    if (d.outcome === 'partial' && d.via === 'named') {
      const from = d.fromDeploymentId;
      this.ctx.compensations.push('rollback', `promote ${from} back (undo the rollback to ${d.toDeploymentId})`, () => this.promoteBlind(from));
      return;
    }
    if (d.outcome !== 'failed') return;
    // Refused, or a failed job that left production where it was: nothing to undo (as `rollBack` decided).
    if (d.reason !== undefined || (d.jobStatus === 'failed' && d.productionDeploymentId === d.fromDeploymentId)) return;
    const from = d.fromDeploymentId;
    this.ctx.compensations.push('rollback', `promote ${from} back (undo the rollback to ${d.toDeploymentId})`, () => this.promoteBack(from));
  }

  /** Read the alias job until it is over for `to` (bounded); the last status read. */
  private async awaitAliasJob(to: string, label: string): Promise<{ status: AliasStatus; waitedMs: number }> {
    const started = Date.now();
    let status = await acts.deployAliasStatus.executeWithOptions({ summary: `${label}: alias job` }, []);
    for (let i = 1; !terminal(status, to) && Date.now() - started < ALIAS_WAIT_MS; i++) {
      await sleep(ALIAS_POLL_MS, { summary: `${label}: alias job ${status.lastAliasRequest?.jobStatus ?? 'not seen'}; check ${i}` });
      status = await acts.deployAliasStatus.executeWithOptions({ summary: `${label}: alias job, check ${i}` }, []);
    }
    return { status, waitedMs: Date.now() - started };
  }

  /** The undo: wait out a job still running, then promote `deploymentId` back and wait for that job. Throws when it did not take. */
  private async promoteBack(deploymentId: string): Promise<void> {
    const label = `undo rollback: promote ${deploymentId}`;
    let status = await acts.deployAliasStatus.executeWithOptions({ summary: `${label}: alias state` }, []);
    const pending = status.lastAliasRequest && !['succeeded', 'failed', 'skipped'].includes(status.lastAliasRequest.jobStatus) ? status.lastAliasRequest.toDeploymentId : undefined;
    if (pending) status = (await this.awaitAliasJob(pending, label)).status;
    if (status.productionDeploymentId === deploymentId && status.autoAssignCustomDomains !== false) return;
    await acts.deployPromote.executeWithOptions({ summary: label }, [{ deploymentId }]);
    const done = await this.awaitAliasJob(deploymentId, label);
    const job = done.status.lastAliasRequest;
    if (done.status.productionDeploymentId !== deploymentId || job?.jobStatus !== 'succeeded') {
      throw ApplicationFailure.create({ type: 'PromoteNotConfirmed', message: `the promote of ${deploymentId} did not take: alias job ${job?.jobStatus ?? 'not seen'}, production on ${done.status.productionDeploymentId ?? 'unknown'}` });
    }
  }

  /** The undo through an adapter that reports nothing back (the signed webhook): the promote is sent; the receiver's 2xx is all there is. */
  private async promoteBlind(deploymentId: string): Promise<void> {
    await acts.deployPromote.executeWithOptions({ summary: `undo rollback: promote ${deploymentId} (the receiver confirms nothing)` }, [{ deploymentId }]);
  }

  /** A rollback to the deployment the input names, through an adapter that cannot confirm it: `partial` until the probes do. */
  private async rollBackNamed(p: Extract<RollbackProposal, { kind: 'rollback' }>): Promise<boolean> {
    const from = p.current.id;
    const to = p.candidate.id;
    const step = 'rollback';
    this.ctx.compensations.push(step, `promote ${from} back (undo the rollback to ${to})`, () => this.promoteBlind(from));
    this.tracker.waitFor(`rollback: production from ${from} to ${to} (named in the input)`);
    try {
      await acts.deployRollback.executeWithOptions({ summary: `rollback: production to ${to}` }, [{ deploymentId: to, description: `incident ${this.tracker.state.incidentId}` }]);
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.ctx.compensations.drop(step);
      const note = `the receiver refused the rollback to ${to}: ${errorMessage(err)}; production stays on ${from}`;
      this.tracker.stepFailed(step, note, { fromDeploymentId: from, toDeploymentId: to, via: 'named', reason: refusalReason(err) ?? 'refused' });
      return false;
    }
    this.tracker.stepDone(step, 'partial', 'runbook', `the receiver accepted the rollback from ${from} to ${to}; the platform reports nothing back, so it is unconfirmed until the verification's probes pass`, {
      fromDeploymentId: from,
      toDeploymentId: to,
      via: 'named',
    });
    return true;
  }

  async rollBack(p: Extract<RollbackProposal, { kind: 'rollback' }>): Promise<boolean> {
    if (p.via === 'redeploy') return this.rebuild(p);
    if (p.via === 'named') return this.rollBackNamed(p);
    const from = p.current.id;
    const to = p.candidate.id;
    const step = 'rollback';
    const failed = (note: string, details: Record<string, unknown>) => {
      this.tracker.stepFailed(step, note, details);
      return false;
    };
    // Registered before the request: a cancel while the job runs promotes the deployment that was live.
    this.ctx.compensations.push(step, `promote ${from} back (undo the rollback to ${to})`, () => this.promoteBack(from));
    this.tracker.waitFor(`rollback: production from ${from} to ${to}`);
    try {
      await acts.deployRollback.executeWithOptions({ summary: `rollback: production to ${to}` }, [{ deploymentId: to, description: `incident ${this.tracker.state.incidentId}` }]);
    } catch (err) {
      if (isCancellation(err)) throw err;
      // A retry after a crash finds its own job: the platform refuses a second one, the first goes on.
      const reason = refusalReason(err);
      const own = reason === 'alias_job_in_progress' || reason === 'already_current' ? await acts.deployAliasStatus.executeWithOptions({ summary: 'rollback: whose alias job' }, []) : undefined;
      if (!own || own.lastAliasRequest?.toDeploymentId !== to || own.lastAliasRequest.type !== 'rollback') {
        this.ctx.compensations.drop(step);
        return failed(`the platform refused the rollback to ${to}: ${errorMessage(err)}; production stays on ${from}`, { fromDeploymentId: from, toDeploymentId: to, reason: reason ?? null });
      }
    }
    const { status, waitedMs } = await this.awaitAliasJob(to, 'rollback');
    const job = status.lastAliasRequest;
    const details = { fromDeploymentId: from, toDeploymentId: to, jobStatus: job?.jobStatus ?? null, productionDeploymentId: status.productionDeploymentId, autoAssignCustomDomains: status.autoAssignCustomDomains };
    if (job?.toDeploymentId === to && job.jobStatus === 'succeeded' && status.productionDeploymentId === to) {
      this.tracker.stepDone(step, 'succeeded', 'runbook', `production rolled back from ${from} to ${to} (alias job succeeded after ${formatDuration(waitedMs)})`, details);
      return true;
    }
    // A failed job leaves production where it was: nothing to undo then.
    if (status.productionDeploymentId === from && job?.jobStatus === 'failed') this.ctx.compensations.drop(step);
    const seen = job?.toDeploymentId === to ? `the alias job ended ${job.jobStatus}` : `no alias job to ${to} finished within ${formatDuration(waitedMs)}`;
    return failed(`the rollback to ${to} did not take: ${seen}; production is on ${status.productionDeploymentId ?? 'unknown'}`, details);
  }

  /**
   * The rollback by a new build: `candidate`'s source built again with today's env, then put on
   * production (by itself when the project auto-assigns, else by a promote), confirmed by where
   * production points. The undo (promote what was live) is registered before the build starts.
   */
  private async rebuild(p: Extract<RollbackProposal, { kind: 'rollback' }>): Promise<boolean> {
    const from = p.current.id;
    const source = p.candidate.id;
    const step = 'rollback';
    const failed = (note: string, details: Record<string, unknown>) => {
      this.tracker.stepFailed(step, note, { fromDeploymentId: from, rebuiltFrom: source, via: 'redeploy', ...details });
      return false;
    };
    this.ctx.compensations.push(step, `promote ${from} back (undo the rebuild of ${source})`, () => this.promoteBack(from));
    this.tracker.waitFor(`rollback: a new build of ${source}'s source with today's env, then production on it`);
    let built: RedeployResult;
    try {
      built = await redeployAndWait({ step, pollEvery: REBUILD_POLL_MS, readyWithin: REBUILD_READY_WITHIN_MS, fromDeploymentId: source });
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.ctx.compensations.drop(step);
      return failed(`the platform refused a new build of ${source}: ${errorMessage(err)}; production stays on ${from}`, { reason: 'redeploy_refused' });
    }
    const to = built.deployment.id;
    if (built.outcome === 'failed') {
      // A build that failed never took production: nothing to undo.
      this.ctx.compensations.drop(step);
      return failed(`the new build of ${source} (${to}) failed: ${built.reason}; production stays on ${from}`, { toDeploymentId: to, reason: 'build_failed' });
    }
    // Timed out, the build may still take production later: the undo stays registered (it checks where production is first).
    if (built.outcome === 'timed_out') return failed(`the new build of ${source} is not READY: ${built.reason}; production is still on ${from}`, { toDeploymentId: to });
    let status = await acts.deployAliasStatus.executeWithOptions({ summary: `rollback: is ${to} on production` }, []);
    if (status.productionDeploymentId !== to) {
      try {
        await acts.deployPromote.executeWithOptions({ summary: `rollback: promote ${to}` }, [{ deploymentId: to }]);
      } catch (err) {
        if (isCancellation(err)) throw err;
        // Production took the build meanwhile (auto-assignment): the promote is refused as already current.
        if (refusalReason(err) !== 'already_current') return failed(`the platform refused to promote the new build ${to}: ${errorMessage(err)}; production is on ${status.productionDeploymentId ?? 'unknown'}`, { toDeploymentId: to });
      }
      status = (await this.awaitAliasJob(to, 'rollback: promote')).status;
    }
    const details = { toDeploymentId: to, jobStatus: status.lastAliasRequest?.jobStatus ?? null, productionDeploymentId: status.productionDeploymentId, autoAssignCustomDomains: status.autoAssignCustomDomains };
    if (status.productionDeploymentId !== to) return failed(`the new build ${to} did not take production: production is on ${status.productionDeploymentId ?? 'unknown'}`, details);
    this.tracker.stepDone(step, 'succeeded', 'runbook', `production moved from ${from} to ${to}, a new build of ${source}'s source with today's env (READY after ${formatDuration(built.waitedMs)})`, {
      fromDeploymentId: from,
      rebuiltFrom: source,
      via: 'redeploy',
      ...details,
    });
    return true;
  }

  get attempted(): boolean {
    return this.tracker.state.steps.some((s) => s.step === 'rollback' && (s.outcome === 'succeeded' || s.outcome === 'failed' || s.outcome === 'partial'));
  }

  get undoable(): RollbackRecord | undefined {
    return rollbackRecord(this.tracker.state);
  }

  async undo(step: string): Promise<boolean> {
    const r = this.undoable;
    if (!r) {
      this.tracker.stepDone(step, 'skipped', 'runbook', 'no rollback in place to undo');
      return false;
    }
    const from = r.toDeploymentId;
    const back = r.fromDeploymentId;
    this.tracker.waitFor(`undo_rollback: promote ${back} back in place of ${from}`);
    try {
      await (this.proposal?.kind === 'rollback' && this.proposal.via === 'named' ? this.promoteBlind(back) : this.promoteBack(back));
    } catch (err) {
      if (isCancellation(err)) throw err;
      const note = `the promote of ${back} back did not take: ${errorMessage(err)}; production stays on ${from}`;
      this.tracker.stepFailed(step, note, { fromDeploymentId: from, toDeploymentId: back });
      return false;
    }
    const how = this.proposal?.kind === 'rollback' && this.proposal.via === 'named' ? 'the receiver accepted the promote (the probes check it next)' : 'auto-assignment is on';
    this.tracker.stepDone(step, 'succeeded', 'runbook', `promoted ${back} back in place of ${from}: the rollback is undone, ${how}`, { fromDeploymentId: from, toDeploymentId: back });
    this.tracker.stepDone('rollback', 'compensated', 'runbook', `undone by ${step}: production is on ${back} again`);
    // The deployment that failed is live again: the fix is checked again, and the incident resolves only if it holds.
    await this.verification.verifyFix('verify_fix');
    return true;
  }

  async verify(step: string): Promise<boolean> {
    const p = this.proposal;
    const last = this.tracker.state.steps.filter((s) => s.step === 'rollback').at(-1);
    const unconfirmed = p?.kind === 'rollback' && p.via === 'named' && last?.outcome === 'partial';
    if (p?.kind !== 'rollback' || (last?.outcome !== 'succeeded' && !unconfirmed)) {
      const why = `the rollback did not take (${last?.note ?? 'no rollback'}): production was not switched, so there is nothing to verify`;
      this.tracker.stepDone(step, 'skipped', 'runbook', why);
      this.tracker.attention(`${step} skipped: ${why}`);
      return false;
    }
    const from = p.current.id;
    // The deployment production was switched to: the candidate, or the new build of its source.
    const switched = [...this.tracker.state.timeline].reverse().find((e) => e.step === 'rollback' && e.details?.outcome === 'succeeded')?.details?.toDeploymentId;
    const to = typeof switched === 'string' ? switched : p.candidate.id;
    // Nothing confirms a named rollback but the app answering: give the platform `confirmWithin` to serve it.
    const within = p.via === 'named' ? this.ctx.input.rollback?.confirmWithin : undefined;
    const probesPass = await this.verification.verifyFix(step, within ? { within, every: Math.min(5000, Math.max(1000, Math.floor(within / 10))) } : undefined);
    let ok = probesPass;
    if (probesPass && p.failingChecks.length) {
      const again = await this.diagnostics.run('middleware_failure');
      const still = p.failingChecks.filter((id) => again?.checks.find((c) => c.id === id)?.verdict !== 'ok');
      if (still.length) {
        ok = false;
        this.tracker.stepDone(step, 'failed', 'runbook', `the probes pass on ${to}, but the diagnostics check(s) that failed still do not pass: ${still.join(', ')}`, { checks: still });
        this.tracker.attention(`${step}: diagnostics ${still.join(', ')} still not ok after the rollback`);
      }
    }
    if (ok) {
      this.ctx.compensations.drop('rollback');
      if (unconfirmed) {
        this.tracker.stepDone('rollback', 'succeeded', 'runbook', `production rolled back from ${from} to ${to}: confirmed by the probes (the receiver reports nothing back)`, { fromDeploymentId: from, toDeploymentId: to, via: 'named' });
      }
      const lasted = Math.max(1, Math.ceil((Date.now() - Math.min(p.failureStartedAt, p.current.createdAt)) / 60_000));
      const autoPromoteOff = p.via === 'rollback' || p.via === undefined ? ` Auto-promote is off: new production builds do not take production until someone promotes (${promoteCommand(to)}); fix forward, then promote the fixed build` : ' Fix forward: the next production build takes production as usual';
      const note = `rollback verified: production on ${to} (was ${from}); the failure lasted about ${lasted} min.${autoPromoteOff}`;
      this.tracker.record('rollback', 'runbook', note, { fromDeploymentId: from, toDeploymentId: to, failureMinutes: lasted });
      return true;
    }
    // The rollback did not fix it: put back what was live (and auto-promotion with it), escalated if that fails.
    await this.ctx.compensations.undoNow('rollback');
    return false;
  }
}
