/**
 * The intake's `IncidentOpener` on Temporal: one incident workflow per category and deployment,
 * under a deterministic workflow id, started with `workflowIdConflictPolicy: 'USE_EXISTING'` so
 * that any number of concurrent or repeated alerts (a burst, Alertmanager's retries, two intake
 * processes) lead to one running execution; the server decides, no lookup races it. Once that
 * incident is closed, the next alert starts a new run under the same id.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { incidentInputSchema, type IncidentCategory, type IncidentInput } from '../domain';
import { recordDetection } from '../workflows/incident-messages';
import type { IncidentState, RecordDetectionAnswer, RecordDetectionRequest } from '../workflows/incident-types';

/** The incident workflow's signature, by name: the intake and the watch's activities import no workflow code. */
type IncidentWorkflow = (input: IncidentInput) => Promise<IncidentState>;
import { INCIDENT_WORKFLOW_TASK_TIMEOUT, IncidentStatusKey } from '../shared';
import { IntakeConfigError } from './rules';
import { oneLine, type AlertResolvedNotice, type AlertResolvedResult, type IncidentOpener, type OpenOrJoinRequest, type OpenOrJoinResult } from './server';

/** The id of the open incident of a category in a deployment, shared by every detection source. */
export const detectedIncidentId = (deployment: string, category: IncidentCategory): string => `incident-${deployment}-${category}`;

/** The id of the next incident after a run that is in its post-incident phase: derived from that run, so concurrent detections meet. */
const successorId = (baseId: string, runId: string) => `${baseId}-after-${runId.slice(0, 8)}`;

/** Resolved (its review still a draft in the post-incident phase) is over for detection: a new detection opens a new incident. */
export const pastResolved = (d: Pick<WorkflowExecutionDescription, 'typedSearchAttributes'>): boolean => d.typedSearchAttributes.get(IncidentStatusKey) === 'resolved';

/** Open for detection: running and not yet resolved. */
export const openForDetection = (d: Pick<WorkflowExecutionDescription, 'status' | 'typedSearchAttributes'>): boolean => d.status.name === 'RUNNING' && !pastResolved(d);

export interface TemporalOpenerOptions {
  client: Client;
  taskQueue: string;
  /** ALERT_DEPLOYMENT: what the incidents belong to, part of the workflow id. */
  deployment: string;
  approvers: string[];
  /** The categories the rules map to: each is checked at construction, so missing approvers fail at start-up, not at 3 a.m. */
  categories?: readonly IncidentCategory[];
  /** The variable named when the approvers do not fit a category (ALERT_APPROVERS, WATCH_APPROVERS). */
  approversVariable?: string;
}

/** The incident input refused what the alert would give it (the request was still single-line and bounded). */
export class AlertIncidentInputInvalid extends Error {
  override readonly name = 'AlertIncidentInputInvalid' as const;
}

const MAX_SUMMARY = 2000;
/** Incidents in their post-incident phase followed at most, from the category's id to the open one. */
const MAX_HOPS = 10;

/** The summary people read in the UI's list: who detected what, since when, and the first evidence lines. */
function summaryOf(req: OpenOrJoinRequest): string {
  const head = `${req.detectedBy === 'watch' ? 'The runbook\'s watch' : 'Alert'} (${req.severity}) detected by ${req.detectedBy}, failing since ${req.startsAt}:`;
  const text = [head, ...req.evidence].join('\n');
  return text.length <= MAX_SUMMARY ? text : `${text.slice(0, MAX_SUMMARY - 1)}…`;
}

const inputOf = (req: OpenOrJoinRequest, approvers: string[]): IncidentInput => ({
  category: req.category,
  // A monitor, not a person: the roster takes `monitor:<name>` as a reporter (and it approves nothing).
  reporter: oneLine(`monitor:${req.detectedBy}`, 200),
  summary: summaryOf(req),
  approvers,
  detection: { detectedBy: req.detectedBy, detectedAt: req.startsAt, dedupKey: oneLine(req.dedupKey, 1000), evidence: req.evidence },
});

/** Reports remembered as sent (per incident run, source and kind): a repeat within the window is not sent again. */
const RECENT_REPORTS = 1000;
const RECENT_REPORT_MS = 10 * 60_000;

/**
 * Reports to one incident go one at a time (the server allows few updates in flight per
 * workflow), an equal report already in flight is shared, and one sent in the last ten minutes is
 * not sent again (the incident would only count it).
 */
class ReportQueue {
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly inFlight = new Map<string, Promise<RecordDetectionAnswer>>();
  private readonly recent = new Map<string, number>();

  send(workflowId: string, key: string, call: () => Promise<RecordDetectionAnswer>): Promise<RecordDetectionAnswer | undefined> {
    const sentAt = this.recent.get(key);
    if (sentAt !== undefined && Date.now() - sentAt < RECENT_REPORT_MS) return Promise.resolve(undefined);
    const shared = this.inFlight.get(key);
    if (shared) return shared;
    const previous = this.tails.get(workflowId) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(call);
    this.inFlight.set(key, mine);
    const tail = mine.then(
      () => this.remember(key),
      () => undefined,
    );
    this.tails.set(workflowId, tail);
    void tail.finally(() => {
      this.inFlight.delete(key);
      if (this.tails.get(workflowId) === tail) this.tails.delete(workflowId);
    });
    return mine;
  }

  private remember(key: string): void {
    this.recent.delete(key);
    this.recent.set(key, Date.now());
    if (this.recent.size > RECENT_REPORTS) this.recent.delete(this.recent.keys().next().value as string);
  }
}

export function createTemporalIncidentOpener(opts: TemporalOpenerOptions): IncidentOpener {
  const { client } = opts;
  const problems = (opts.categories ?? []).flatMap((category) => {
    const probe = inputOf({ category, severity: 'critical', dedupKey: 'k', detectedBy: 'alert:receiver', startsAt: new Date(0).toISOString(), evidence: [] }, opts.approvers);
    const parsed = incidentInputSchema.safeParse(probe);
    return parsed.success ? [] : parsed.error.issues.map((i) => `${category}: ${i.path.join('.')}: ${i.message}`);
  });
  if (problems.length) throw new IntakeConfigError(`${opts.approversVariable ?? 'ALERT_APPROVERS'}: ${problems.join('; ')}`);
  const reports = new ReportQueue();

  /** A report to the running incident (`recordDetection`), once per source and kind. */
  const report = async (workflowId: string, runId: string | undefined, req: RecordDetectionRequest): Promise<boolean> => {
    const handle = client.workflow.getHandle(workflowId, runId);
    const answer = await reports.send(workflowId, `${runId ?? ''}|${req.kind}|${req.dedupKey}`, () => handle.executeUpdate(recordDetection, { args: [req] }));
    return answer?.recorded ?? false;
  };

  /** One start under `id` (USE_EXISTING): the run there, whether this call started it, and whether it is past `resolved` (its post-incident phase). */
  const startOnce = async (id: string, req: OpenOrJoinRequest, raw: IncidentInput) => {
    // The memo marks who started the run: the start answer does not say whether it started one or found one.
    const startToken = randomUUID();
    const handle = await client.workflow.start<IncidentWorkflow>('incidentWorkflow', {
      taskQueue: opts.taskQueue,
      workflowId: id,
      args: [raw],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowTaskTimeout: INCIDENT_WORKFLOW_TASK_TIMEOUT,
      memo: { detectedBy: req.detectedBy, detectedAt: req.startsAt, severity: req.severity, dedupKey: oneLine(req.dedupKey, 1000), startToken },
      staticSummary: oneLine(`Incident (${req.category}, ${req.severity}) detected by ${req.detectedBy}`, 400),
      staticDetails: `Detected by ${req.detectedBy} at ${req.startsAt}.\n${req.evidence.join('\n')}`,
    });
    const description = await handle.describe();
    const startedByMe = description.memo?.startToken === startToken;
    return { workflowId: id, runId: description.runId, startedByMe, reviewing: !startedByMe && pastResolved(description) };
  };

  /** Starts in flight, by workflow id: a burst's other requests wait for this one's answer instead of starting again. */
  const opening = new Map<string, Promise<{ workflowId: string; runId: string; startedByMe: boolean }>>();
  const openShared = (workflowId: string, req: OpenOrJoinRequest, raw: IncidentInput) => {
    const started = (async () => {
      // An incident in its post-incident phase (resolved, its review still a draft) is over: the next one goes
      // under an id derived from that run, again with USE_EXISTING, so concurrent detections still meet.
      let id = workflowId;
      for (let hop = 0; ; hop++) {
        const found = await startOnce(id, req, raw);
        if (!found.reviewing || hop >= MAX_HOPS) return found;
        id = successorId(workflowId, found.runId);
      }
    })();
    opening.set(workflowId, started);
    void started.finally(() => opening.delete(workflowId)).catch(() => undefined);
    return started;
  };

  /** The open incident (before `resolved`) under the category's id or one of its successors; undefined when none. */
  const currentIncident = async (workflowId: string): Promise<{ workflowId: string; runId: string } | undefined> => {
    let id = workflowId;
    for (let hop = 0; hop <= MAX_HOPS; hop++) {
      let d;
      try {
        d = await client.workflow.getHandle(id).describe();
      } catch (e) {
        if (e instanceof WorkflowNotFoundError) return undefined;
        throw e;
      }
      if (d.status.name !== 'RUNNING') return undefined;
      if (openForDetection(d)) return { workflowId: id, runId: d.runId };
      id = successorId(workflowId, d.runId);
    }
    return undefined;
  };

  return {
    async openOrJoin(req: OpenOrJoinRequest): Promise<OpenOrJoinResult> {
      const workflowId = detectedIncidentId(opts.deployment, req.category);
      const raw = inputOf(req, opts.approvers);
      const parsed = incidentInputSchema.safeParse(raw);
      if (!parsed.success) throw new AlertIncidentInputInvalid(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      // Concurrent detections of one incident share one start (a burst costs one round trip, not one each): the first's answer is true for all of them at that moment.
      const shared = opening.get(workflowId);
      const { workflowId: incidentId, runId, startedByMe } = shared ? { ...(await shared), startedByMe: false } : await openShared(workflowId, req, raw);
      if (startedByMe) return { incidentId, runId, joined: false, recorded: true };
      // Joined: the open incident's timeline says so (the same source again is only counted).
      const recorded = await report(incidentId, runId, { kind: 'firing', detectedBy: req.detectedBy, detectedAt: req.startsAt, dedupKey: oneLine(req.dedupKey, 1000), evidence: req.evidence });
      return { incidentId, runId, joined: true, recorded };
    },

    async alertResolved(notice: AlertResolvedNotice): Promise<AlertResolvedResult> {
      const open = await currentIncident(detectedIncidentId(opts.deployment, notice.category));
      if (!open) return { recorded: false };
      try {
        const recorded = await report(open.workflowId, open.runId, { kind: 'cleared', detectedBy: notice.detectedBy, detectedAt: notice.endsAt, dedupKey: oneLine(notice.dedupKey, 1000), evidence: notice.evidence });
        return { incidentId: open.workflowId, recorded };
      } catch (e) {
        // Closed or resolved between the describe and the update: nothing open to tell.
        if (e instanceof WorkflowNotFoundError) return { recorded: false };
        if (e instanceof WorkflowUpdateFailedError && /already (resolved|cancelled)/.test(e.cause?.message ?? '')) return { recorded: false };
        throw e;
      }
    },
  };
}
