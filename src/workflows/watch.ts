/**
 * `watchWorkflow`: one run of the runbook's watch, started by a Temporal Schedule every interval
 * (src/watch/schedule.ts). It runs triage's probes, classifies what they saw with triage's rules,
 * and carries a streak from run to run in the Schedule's last completion result: a category seen
 * `consecutive` runs in a row opens that category's incident (or joins the open one), detected by
 * `watch`; seen clear as many runs in a row, the incident it opened is told (it closes nothing).
 * An inconclusive run (a probe that could not run) changes nothing and never opens an incident; a
 * run that cannot complete fails, visibly in the Schedule's recent actions and `npm run watch -- status`.
 */
import { ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import { z } from 'zod';
import { DETECTION_EVIDENCE_CHARS, DETECTION_EVIDENCE_LINES, INCIDENT_CATEGORIES, SEVERITIES, describeIssues, personSchema } from '../domain';
import { terminalLine } from '../render-safe';
import { redactSecrets } from '../secret-patterns';
import { classify, formatProbeReport, type ProbeReport } from '../triage/rules';
import type { WatchActivities } from '../activities/watch';

export const watchInputSchema = z.strictObject({
  /** ALERT_DEPLOYMENT: the incidents' workflow ids are `incident-<deployment>-<category>`, shared with the alert intake. */
  deployment: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, "must be 1-63 letters, digits, '-' or '_'"),
  /** Runs in a row a category must be seen (or seen clear) before the watch acts: against flapping. */
  consecutive: z.number().int().min(1).max(20).default(2),
  /** The approvers of the incidents the watch opens. */
  approvers: z.array(personSchema).min(1).max(50),
  /** Each probe's timeout. */
  probeTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
});
export type WatchInput = z.input<typeof watchInputSchema>;

const iso = z.iso.datetime({ offset: true });
const category = z.enum(INCIDENT_CATEGORIES);

/** What a run hands the next one (the Schedule's last completion result), and what `status` shows. */
export const watchResultSchema = z.strictObject({
  at: iso,
  outcome: z.enum(['clear', 'firing', 'inconclusive', 'opened', 'joined', 'reported_clear']),
  /** What the probes saw this run: the triage rule and its reason. */
  seen: z.strictObject({ category: category.optional(), rule: z.string().max(200), reason: z.string().max(2000) }),
  message: z.string().max(2000),
  /** The category seen in the runs before this one, in a row. */
  streak: z
    .strictObject({
      category,
      severity: z.enum(SEVERITIES),
      count: z.number().int().min(1),
      /** When the first run of the streak probed: the detection time (MTTD starts here). */
      since: iso,
      evidence: z.array(z.string().max(DETECTION_EVIDENCE_CHARS)).max(DETECTION_EVIDENCE_LINES),
    })
    .optional(),
  /** The incident the watch opened or joined, until it is closed or the watch reported it clear. */
  incident: z
    .strictObject({
      category,
      workflowId: z.string().max(300),
      runId: z.string().max(100),
      clearRuns: z.number().int().min(0),
      reportedClear: z.boolean(),
    })
    .optional(),
});
export type WatchResult = z.output<typeof watchResultSchema>;

const acts = proxyActivities<WatchActivities>({ startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3, initialInterval: '1 second' } });

/** The previous run's result; anything else (the first run, a result of another shape) starts afresh. */
function previous(): Pick<WatchResult, 'streak' | 'incident'> {
  const parsed = watchResultSchema.safeParse(workflowInfo().lastResult);
  return parsed.success ? { streak: parsed.data.streak, incident: parsed.data.incident } : {};
}

/** One evidence line per run: when, the rule, why, then the probe lines that failed, each one line and bounded. */
function evidenceLine(report: ProbeReport, rule: string, reason: string): string {
  const failing = formatProbeReport(report).filter((l) => !/^\S+( \S+)?\s+(ok|skipped)\b/.test(l));
  return terminalLine(redactSecrets(`${report.at} ${rule}: ${reason}${failing.length ? ` | ${failing.join(' | ')}` : ''}`), DETECTION_EVIDENCE_CHARS);
}

export async function watchWorkflow(raw: WatchInput): Promise<WatchResult> {
  const parsed = watchInputSchema.safeParse(raw);
  if (!parsed.success) throw ApplicationFailure.create({ type: 'InvalidWatchInput', message: describeIssues(parsed.error, 'watch'), nonRetryable: true });
  const input = parsed.data;
  let { streak, incident } = previous();

  const report = await acts.runTriageProbes({ timeoutMs: input.probeTimeoutMs });
  const c = classify(report);
  const seen = { ...(c.category ? { category: c.category } : {}), rule: c.rule, reason: terminalLine(redactSecrets(c.reason), 2000) };
  const done = (outcome: WatchResult['outcome'], message: string): WatchResult => ({ at: report.at, outcome, seen, message, ...(streak ? { streak } : {}), ...(incident ? { incident } : {}) });

  if (c.rule === 'inconclusive') return done('inconclusive', `inconclusive, nothing changes (streak ${streak ? `${streak.category} ×${streak.count}` : 'none'}): ${seen.reason}`);

  if (!c.category) {
    streak = undefined;
    if (!incident) return done('clear', 'clear');
    incident = { ...incident, clearRuns: incident.clearRuns + 1 };
    if (incident.reportedClear || incident.clearRuns < input.consecutive) return done('clear', `clear (${incident.clearRuns} run(s) in a row since incident ${incident.workflowId})`);
    const answer = await acts.watchReport({ kind: 'cleared', workflowId: incident.workflowId, runId: incident.runId, category: incident.category, at: report.at, evidence: [evidenceLine(report, c.rule, c.reason)] });
    if (!answer.running) {
      incident = undefined;
      return done('clear', 'clear; the incident the watch opened is closed');
    }
    incident = { ...incident, reportedClear: true };
    return done('reported_clear', `clear ${input.consecutive} run(s) in a row: told incident ${answer.incidentId} (${answer.message}); closing it is a person's decision`);
  }

  const line = evidenceLine(report, c.rule, c.reason);
  streak =
    streak && streak.category === c.category
      ? { ...streak, severity: c.severity, count: streak.count + 1, evidence: streak.evidence.length < DETECTION_EVIDENCE_LINES ? [...streak.evidence, line] : streak.evidence }
      : { category: c.category, severity: c.severity, count: 1, since: report.at, evidence: [line] };
  if (streak.count < input.consecutive) return done('firing', `${c.category} seen ${streak.count} of ${input.consecutive} run(s) in a row; not yet an incident`);

  const known = incident && incident.category === c.category ? incident : undefined;
  if (known && !known.reportedClear && known.clearRuns === 0) {
    // Still the incident this watch opened or joined: it knows; one question tells whether it is still open.
    const answer = await acts.watchReport({ kind: 'firing', workflowId: known.workflowId, runId: known.runId, category: c.category, at: streak.since, evidence: streak.evidence, onlyIfClosed: true });
    if (answer.running) return done('firing', `${c.category} still seen (${streak.count} runs); incident ${known.workflowId} is open`);
  } else if (known) {
    // Seen clear in between, then failing again: the same incident is told it fires again.
    const answer = await acts.watchReport({ kind: 'firing', workflowId: known.workflowId, runId: known.runId, category: c.category, at: streak.since, evidence: streak.evidence });
    if (answer.running) {
      incident = { ...known, clearRuns: 0, reportedClear: false };
      return done('joined', `${c.category} seen again: told incident ${answer.incidentId} (${answer.message})`);
    }
  }
  const opened = await acts.watchOpenOrJoin({ deployment: input.deployment, approvers: input.approvers, category: c.category, severity: streak.severity, since: streak.since, evidence: streak.evidence });
  incident = { category: c.category, workflowId: opened.incidentId, runId: opened.runId, clearRuns: 0, reportedClear: false };
  return done(
    opened.joined ? 'joined' : 'opened',
    opened.joined
      ? `${c.category} seen ${streak.count} runs in a row: joined the open incident ${opened.incidentId}${opened.recorded ? '' : ' (already reported by the watch: counted)'}`
      : `${c.category} seen ${streak.count} runs in a row: opened incident ${opened.incidentId}`,
  );
}
