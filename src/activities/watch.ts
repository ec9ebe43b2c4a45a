/**
 * The watch's activities (src/workflows/watch.ts): open or join the incident of a category it saw
 * `consecutive` runs in a row, through the same opener as the alert intake (one incident per
 * category and deployment, Temporal's USE_EXISTING id policy decides), and tell that incident
 * later what the watch sees. They use the worker's own Temporal client; the probes are triage's.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { IncidentCategory, Severity } from '../domain';
import { createTemporalIncidentOpener, openForDetection } from '../intake/temporal-opener';
import { IntakeConfigError } from '../intake/rules';
import type { ProbeReport } from '../triage/rules';
import { recordDetection } from '../workflows/incident-messages';

export interface WatchOpenRequest {
  deployment: string;
  approvers: string[];
  category: IncidentCategory;
  severity: Severity;
  /** The first failing run's time: the detection time. */
  since: string;
  evidence: string[];
}

export interface WatchOpenAnswer {
  incidentId: string;
  runId: string;
  joined: boolean;
  /** Whether the incident's timeline lists it (a repeat of the watch's own report is only counted). */
  recorded: boolean;
}

export interface WatchReportRequest {
  kind: 'firing' | 'cleared';
  workflowId: string;
  runId: string;
  category: IncidentCategory;
  at: string;
  evidence: string[];
  /** Only ask whether the incident is still open; report nothing. */
  onlyIfClosed?: boolean;
}

export interface WatchReportAnswer {
  incidentId: string;
  /** The incident under that id is still open (a run of it, continued as new or not), and not yet resolved. */
  running: boolean;
  recorded: boolean;
  message: string;
}

export interface WatchActivities {
  runTriageProbes(input: { timeoutMs: number }): Promise<ProbeReport & { sandbox: boolean }>;
  watchOpenOrJoin(req: WatchOpenRequest): Promise<WatchOpenAnswer>;
  watchReport(req: WatchReportRequest): Promise<WatchReportAnswer>;
}

/** The watch's dedup key in an incident: every report of the watch about one category is one source. */
export const watchDedupKey = (category: IncidentCategory) => `watch|${category}`;

export function createWatchActivities(): Pick<WatchActivities, 'watchOpenOrJoin' | 'watchReport'> {
  return {
    async watchOpenOrJoin(req: WatchOpenRequest): Promise<WatchOpenAnswer> {
      const ctx = Context.current();
      let opener;
      try {
        opener = createTemporalIncidentOpener({ client: ctx.client, taskQueue: ctx.info.taskQueue, deployment: req.deployment, approvers: req.approvers, categories: [req.category], approversVariable: 'WATCH_APPROVERS' });
      } catch (e) {
        if (e instanceof IntakeConfigError) throw ApplicationFailure.create({ type: 'WatchConfigInvalid', message: e.message, nonRetryable: true });
        throw e;
      }
      const result = await opener.openOrJoin({ category: req.category, severity: req.severity, dedupKey: watchDedupKey(req.category), detectedBy: 'watch', startsAt: req.since, evidence: req.evidence });
      return { incidentId: result.incidentId, runId: result.runId ?? '', joined: result.joined, recorded: result.recorded ?? false };
    },

    async watchReport(req: WatchReportRequest): Promise<WatchReportAnswer> {
      const handle = Context.current().client.workflow.getHandle(req.workflowId);
      let running: boolean;
      try {
        // An incident in its post-incident phase (resolved, the review a draft) is over for detection: the next detection opens a new one.
        running = openForDetection(await handle.describe());
      } catch (e) {
        if (e instanceof WorkflowNotFoundError) running = false;
        else throw e;
      }
      if (!running) return { incidentId: req.workflowId, running, recorded: false, message: 'the incident is closed' };
      if (req.onlyIfClosed) return { incidentId: req.workflowId, running, recorded: false, message: 'still open' };
      const answer = await handle.executeUpdate(recordDetection, {
        args: [{ kind: req.kind, detectedBy: 'watch', detectedAt: req.at, dedupKey: watchDedupKey(req.category), evidence: req.evidence }],
      });
      return { incidentId: req.workflowId, running, recorded: answer.recorded, message: answer.message };
    },
  };
}
