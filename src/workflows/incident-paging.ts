/**
 * Paging the on-call from the incident (docs/paging.md): a gate that needs a decision pages the
 * primary of the incident's rotation (PagerDuty Events API v2, one alert per incident and step),
 * its escalation pages the secondary, then the rotation's escalation target; a decision
 * acknowledges, the incident's end resolves, each mitigation applied is a change event. Who is on
 * call comes from the roster the incident recorded; routing keys stay in the worker. Pages run in
 * the background: a failure is retried, then recorded and needs attention, never blocks the incident.
 */
import { isCancellation, proxyActivities } from '@temporalio/workflow';
import type { PagingActivities } from '../activities';
import { INCIDENT_COMMANDS, NON_RETRYABLE_ERROR_TYPES } from '../shared';
import { onCallAt } from '../roster/rotation';
import type { PolicyStep, RosterPerson, WhoRef } from '../roster/schema';
import type { GatedStep } from '../domain';
import { ruleFor } from '../roster/policy';
import { resolvePerson } from '../roster/resolve';
import type { IncidentState, PageRecord } from './incident-types';

const paging = proxyActivities<PagingActivities>({
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumAttempts: 4, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
});

/** What paging needs of the tracker (incident-state.ts), without importing it. */
export interface PagerHost {
  state: IncidentState;
  record(step: string, actor: string, description: string, details?: Record<string, unknown>): void;
  attention(note: string): void;
}

type Level = 'primary' | 'secondary' | 'escalation';
const LEVELS: readonly Level[] = ['primary', 'secondary', 'escalation'];

const SEVERITY = { critical: 'critical', high: 'error', medium: 'warning', low: 'info' } as const;

const message = (err: unknown) => (err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err));

export class Pager {
  private background: Promise<void>[] = [];

  constructor(private readonly host: PagerHost) {}

  /** Read without creating: a state that never paged has no `pages` (queries compare equal). */
  private get pages(): readonly PageRecord[] {
    return this.host.state.pages ?? [];
  }

  /** The rotation that answers for a step: the first the incident's approvers name, else the first the policy names for it. */
  private rotationFor(step: PolicyStep): string | undefined {
    const roster = this.host.state.roster?.roster;
    if (!roster) return undefined;
    const named = this.host.state.approvers.map((a) => /^@(\S+)$/u.exec(a.trim())?.[1]).find((r) => r !== undefined && roster.rotations[r]);
    if (named) return named;
    const rule = ruleFor(roster, { ...(this.host.state.category ? { category: this.host.state.category } : {}), severity: this.host.state.severity ?? 'critical', step, action: 'approve' });
    return rule?.who.find((w): w is Extract<WhoRef, { rotation: string }> => 'rotation' in w && roster.rotations[w.rotation] !== undefined)?.rotation;
  }

  /**
   * Whom a level pages, and through which target (the person's own service, else the rotation's):
   * the rotation's primary, secondary and escalation target in that order, leaving out whoever
   * requested the step (they cannot decide it).
   */
  private targetFor(step: PolicyStep, level: Level, requester?: string): { target: string; person?: RosterPerson } | undefined {
    const roster = this.host.state.roster?.roster;
    const rotation = this.rotationFor(step);
    if (!roster || !rotation) return undefined;
    const onCall = onCallAt(roster, rotation, new Date(Date.now()));
    const requesterId = requester === undefined ? undefined : resolvePerson(roster, requester);
    const ladder = [onCall.primary, onCall.secondary, onCall.escalation].filter(
      (p, i, all): p is RosterPerson => p !== undefined && all.findIndex((q) => q?.id === p.id) === i && !(requesterId?.ok && requesterId.person.id === p.id),
    );
    const person = ladder[LEVELS.indexOf(level)];
    if (person && roster.pageable.includes(`person:${person.id}`)) return { target: `person:${person.id}`, person };
    if (person && roster.pageable.includes(`rotation:${rotation}`)) return { target: `rotation:${rotation}`, person };
    return undefined;
  }

  private run(record: Omit<PageRecord, 'at' | 'outcome'>, send: () => Promise<{ delivered: 'pagerduty' | 'not_configured' }>): void {
    const entry: PageRecord = { ...record, at: new Date().toISOString(), outcome: 'sending' };
    (this.host.state.pages ??= []).push(entry);
    const who = entry.person ? `${entry.person} (${entry.target})` : entry.target;
    // Said when sent (in the task that decided it); only a page that did not go out is said again.
    this.host.record('page', 'runbook', `${entry.action === 'trigger' ? `paging ${entry.level}` : entry.action} ${who} for ${entry.step}`, { target: entry.target, level: entry.level, action: entry.action });
    this.background.push(
      send().then(
        (r) => {
          entry.outcome = r.delivered === 'pagerduty' ? 'delivered' : 'not_configured';
          if (r.delivered !== 'pagerduty') this.host.record('page', 'runbook', `${entry.action} ${who} for ${entry.step} not sent: the worker has no paging configured`, { target: entry.target });
        },
        (err: unknown) => {
          if (isCancellation(err)) return;
          entry.outcome = 'failed';
          entry.note = message(err);
          this.host.record('page', 'runbook', `paging ${who} (${entry.action}, ${entry.step}) failed after retries: ${entry.note}`, { target: entry.target, level: entry.level, action: entry.action });
          this.host.attention(`paging ${who} for ${entry.step} failed (${entry.note}): reach them another way`);
        },
      ),
    );
  }

  /** A gate needs a decision (`primary`), or its escalation came (`secondary`, then `escalation`). */
  page(step: GatedStep, level: Level, title: string, decideBy: string, requester?: string): void {
    if (this.pages.some((p) => p.step === step && p.level === level && p.action === 'trigger')) return;
    const to = this.targetFor(step, level, requester);
    if (!to) return;
    const { state } = this.host;
    const id = state.incidentId;
    const summary = `${level === 'primary' ? '' : 'ESCALATED: '}${state.category ?? 'incident'}: ${step} needs a decision: ${title} (by ${decideBy})`;
    this.run({ step, target: to.target, ...(to.person ? { person: to.person.id } : {}), level, action: 'trigger' }, () =>
      paging.pageTrigger.executeWithOptions({ summary: `page ${level} for ${step}` }, [
        {
          incidentId: id,
          step,
          target: to.target,
          summary,
          severity: SEVERITY[state.severity ?? 'critical'],
          commands: [`npm run incident -- show ${id}`, INCIDENT_COMMANDS.approve(id, step), `npm run incident -- reject ${id} --step ${step} --approver <you> --reason "<why>"`],
          ...(state.category ? { group: state.category } : {}),
          details: { level, ...(to.person ? { person: to.person.id } : {}), decide_by: decideBy },
        },
      ]),
    );
  }

  /** Someone decided the step: every alert of it stops notifying. */
  decided(step: string): void {
    for (const target of this.triggered(step)) {
      this.run({ step, target, level: 'primary', action: 'acknowledge' }, () => paging.pageAcknowledge.executeWithOptions({ summary: `page: acknowledge ${step}` }, [{ incidentId: this.host.state.incidentId, step, target }]));
    }
  }

  /** The incident is over: every alert it raised closes. */
  closed(): void {
    const steps = [...new Set(this.pages.filter((p) => p.action === 'trigger').map((p) => p.step))];
    for (const step of steps) {
      for (const target of this.triggered(step)) {
        if (this.pages.some((p) => p.step === step && p.target === target && p.action === 'resolve')) continue;
        this.run({ step, target, level: 'primary', action: 'resolve' }, () => paging.pageResolve.executeWithOptions({ summary: `page: resolve ${step}` }, [{ incidentId: this.host.state.incidentId, step, target }]));
      }
    }
  }

  /** A mitigation was applied: a change event on the rotation's (or its primary's) service. */
  change(step: GatedStep, note: string): void {
    const to = this.targetFor(step, 'primary');
    if (!to) return;
    this.run({ step, target: to.target, level: 'change', action: 'change' }, () =>
      paging.pageChange.executeWithOptions({ summary: `page: change event for ${step}` }, [{ incidentId: this.host.state.incidentId, target: to.target, summary: `${step}: ${note}`.slice(0, 1000), details: { step } }]),
    );
  }

  private triggered(step: string): string[] {
    return [...new Set(this.pages.filter((p) => p.step === step && p.action === 'trigger' && p.outcome !== 'failed').map((p) => p.target))];
  }

  async flush(): Promise<void> {
    await Promise.all(this.background.splice(0));
  }
}
