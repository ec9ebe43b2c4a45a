/**
 * What `npm run incident` shows: an incident's state (pending decisions, steps by hand, what is
 * still open, its child workflows with a revocation's progress bar, the timeline), the incident
 * list from visibility queries on the search attributes, and `watch`, which follows one until it
 * closes.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { z } from 'zod';
import { existingWorkflow } from './common';
import { durationSchema, formatDuration, INCIDENT_CATEGORIES, INCIDENT_STATUSES, SEVERITIES, type TimelineEvent } from '../domain';
import { INCIDENT_COMMANDS, IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey } from '../shared';
import { getIncidentState, incidentWorkflow, type IncidentState } from '../workflows/incident';
import { formatCount, type RevocationProgress } from '../revoke-sessions';
import { terminalLine, terminalLines } from '../render-safe';

const INCIDENT = incidentWorkflow.name;

/** The kinds of child workflow a step runs: what `show` calls one, and the command that follows it. */
const CHILD_KINDS = {
  revocation: { noun: 'revocation', follow: (id: string) => `npm run revoke -- progress ${id}` },
  reconciliation: { noun: 'reconciliation', follow: (id: string) => `npm run reconcile -- progress ${id}` },
  // A step the CLI does not know yet: Temporal's own command shows it.
  other: { noun: 'child workflow', follow: (id: string) => `npm run temporal -- workflow describe --workflow-id ${id}` },
};
export type ChildKind = keyof typeof CHILD_KINDS;
const CHILD_OF_STEP: Record<string, ChildKind> = {
  revoke_all_sessions: 'revocation',
  targeted_revocation: 'revocation',
  reconcile_webhooks: 'reconciliation',
};

export interface ChildWorkflow {
  step: string;
  workflowId: string;
  kind: ChildKind;
}

/**
 * The child workflow of each step that runs one: the id recorded in the timeline, or while it
 * runs, the id the playbook gives it (`<incidentId>-<step>`): an approved revocation step, or the
 * reconciliation the incident is waiting for.
 */
export function childWorkflows(s: IncidentState): ChildWorkflow[] {
  const ids = new Map<string, string>();
  for (const e of s.timeline) {
    const id = e.details?.childWorkflowId;
    if (typeof id === 'string') ids.set(e.step, id);
  }
  for (const r of s.steps) {
    if (CHILD_OF_STEP[r.step] === 'revocation' && r.outcome === 'approved' && !ids.has(r.step)) ids.set(r.step, `${s.incidentId}-${r.step}`);
  }
  for (const [step, kind] of Object.entries(CHILD_OF_STEP)) {
    if (kind === 'reconciliation' && s.waitingFor.startsWith(`${step}:`) && !ids.has(step)) ids.set(step, `${s.incidentId}-${step}`);
  }
  return [...ids].map(([step, workflowId]) => ({ step, workflowId, kind: CHILD_OF_STEP[step] ?? 'other' }));
}

/** One timeline line, as `show` and `watch` print it: each field one line of visible text (src/render-safe.ts). */
export const formatTimelineEvent = (e: TimelineEvent) => `    ${terminalLine(e.time)} ${terminalLine(e.step).padEnd(20)} ${terminalLine(e.actor).padEnd(16)} ${terminalLine(e.description)}`;

/** What waits for a human: pending approvals and steps to do by hand, each with the command that decides it; one line each. */
export function formatPending(s: IncidentState): string[] {
  const lines = [s.pendingApprovals.length ? '  pending approvals:' : '  pending approvals: none'];
  for (const p of s.pendingApprovals) {
    lines.push(
      `    ${p.step}: ${p.title} — ${p.approvedBy.length}/${p.approvalsNeeded} approved${p.approvedBy.length ? ` (${p.approvedBy.join(', ')})` : ''}; requested by ${p.requestedBy}; may approve: ${p.eligible.join(', ') || 'nobody on the list'}; ${p.escalated ? 'ESCALATED; ' : `escalates ${p.escalateAt}; `}decide by ${p.decideBy}${p.signatureRequired ? '; a signed decision is required' : ''}`,
      `      ${p.signatureRequired ? INCIDENT_COMMANDS.decideSigned(s.incidentId, p.step) : INCIDENT_COMMANDS.approve(s.incidentId, p.step)}`,
    );
  }
  for (const m of s.manualSteps.filter((x) => !x.outcome)) {
    lines.push(`  to do by hand: ${m.step}: ${m.instructions}; confirm by ${m.confirmBy}`, `      ${INCIDENT_COMMANDS.confirm(s.incidentId, m.step)}`);
  }
  return lines.map((l) => terminalLine(l));
}

/** A running revocation child as one text bar: how far, what it did, how long is left. */
export function progressBar(p: RevocationProgress, width = 24): string {
  const t = p.totals;
  const share = p.usersInScope ? Math.min(1, t.usersScanned / Math.max(1, p.usersInScope)) : p.phase === 'completed' ? 1 : 0;
  const filled = Math.round(share * width);
  const done = p.dryRun ? `${formatCount(t.sessionsFound)} would be revoked` : `${formatCount(t.sessionsRevoked)} revoked`;
  const eta = p.phase === 'completed' ? 'done' : p.etaSeconds === null ? p.phase : `ETA ${formatDuration(p.etaSeconds * 1000)}`;
  const trouble = p.lastClerkError ? ` · Clerk: ${p.lastClerkError.type} (${p.lastClerkError.interruptionsInARow} in a row)` : '';
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(share * 100).toFixed(0)}% · ${formatCount(t.usersScanned)}${p.usersInScope !== null ? ` of ${formatCount(p.usersInScope)}` : ''} users · ${done} · ${p.outcome} · ${eta}${trouble}`;
}

/**
 * The state as an on-call engineer reads it: what it waits for, who may decide, the timeline.
 * `progress`: the revocation children's progress by workflow id, shown as bars.
 */
export function formatState(s: IncidentState, progress: ReadonlyMap<string, RevocationProgress> = new Map()): string {
  const lines = [
    `${s.incidentId}: ${s.summary}${s.dryRun ? ' (dry run)' : ''}`,
    `  status ${s.status} · category ${s.category ?? 'unknown'} · severity ${s.severity ?? 'unknown'} · reporter ${s.reporter}`,
    `  waiting for: ${s.waitingFor}`,
  ];
  if (s.triage) lines.push(`  triage (${s.triage.agreement}, rule ${s.triage.rule}): ${s.triage.note}`);
  lines.push(...formatPending(s));
  if (s.openItems.length) {
    lines.push('  still open:', ...s.openItems.map((i) => `    - ${i}`));
    if (s.status === 'needs_human') lines.push(`      ${INCIDENT_COMMANDS.resolve(s.incidentId)}`);
  }
  for (const c of childWorkflows(s)) {
    const p = c.kind === 'revocation' ? progress.get(c.workflowId) : undefined;
    const { noun, follow } = CHILD_KINDS[c.kind];
    lines.push(`  ${noun} of ${c.step}: workflow ${c.workflowId}`, ...(p ? [`      ${progressBar(p)}`] : []), `      ${follow(c.workflowId)}`);
  }
  if (s.attention.length) lines.push('  needs attention:', ...s.attention.map((a) => `    - ${a}`));
  lines.push('  timeline:');
  // Every line escaped on its own, so no text in the state adds one; the timeline escapes field by field.
  return [terminalLines(lines), ...s.timeline.map(formatTimelineEvent)].join('\n');
}

/** `--as`: who runs the command, recorded by Temporal as the client identity (docs/cli.md). */
export const operatorFlagSchema = z.object({
  as: z.string().trim().min(1, 'must name who runs the command').max(200).regex(/^[^\p{Cc}]*$/u, 'must be one line of printable text').optional(),
});

const oneOf = (what: string, values: readonly string[]) => (iss: { input?: unknown }) =>
  `${JSON.stringify(iss.input)} is not ${what}; one of ${values.join(', ')}`;

/** `--since`: a duration back from now (`2h`, `7 days`) or an ISO time (`2026-11-27T08:00:00Z`). */
const sinceSchema = z
  .string()
  .trim()
  .transform((text, ctx) => {
    if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
      const at = new Date(text);
      if (!Number.isNaN(at.getTime())) return at;
    } else {
      const ago = durationSchema(1000, 366 * 86_400_000).safeParse(text);
      if (ago.success) return new Date(Date.now() - ago.data);
    }
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(text)} is neither a duration up to a year ("2h", "7 days") nor an ISO time ("2026-11-27T08:00:00Z")` });
    return z.NEVER;
  });

export const listFlagsSchema = z
  .object({
    status: z.array(z.enum(INCIDENT_STATUSES, { error: oneOf('a status', INCIDENT_STATUSES) })).default([]),
    category: z.enum(INCIDENT_CATEGORIES, { error: oneOf('a category', INCIDENT_CATEGORIES) }).optional(),
    severity: z.enum(SEVERITIES, { error: oneOf('a severity', SEVERITIES) }).optional(),
    open: z.boolean().optional(),
    closed: z.boolean().optional(),
    since: sinceSchema.optional(),
    limit: z
      .string()
      .regex(/^\d+$/, 'must be a whole number')
      .transform(Number)
      .pipe(z.number().int().min(1, 'must be at least 1').max(1000, 'must be at most 1000'))
      .default(20),
    // Task queue names are free text in Temporal; ours are ids, so a narrow alphabet keeps the query plain.
    taskQueue: z.string().regex(/^[A-Za-z0-9._:/-]{1,200}$/, 'must be 1 to 200 letters, digits or . _ : / -').optional(),
  })
  .strict()
  .refine((f) => !(f.open && f.closed), { message: 'cannot be combined with --closed', path: ['open'] });
export type ListFlags = z.output<typeof listFlagsSchema>;

/** A visibility-query string literal: quoted, with quotes and backslashes escaped. */
export const quoteQueryValue = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** The visibility query of `list`, from validated flags only. */
export function buildListQuery(f: ListFlags): string {
  const clauses = [`WorkflowType = ${quoteQueryValue(INCIDENT)}`];
  if (f.status.length) clauses.push(`${IncidentStatusKey.name} IN (${f.status.map(quoteQueryValue).join(', ')})`);
  if (f.category) clauses.push(`${IncidentCategoryKey.name} = ${quoteQueryValue(f.category)}`);
  if (f.severity) clauses.push(`${IncidentSeverityKey.name} = ${quoteQueryValue(f.severity)}`);
  if (f.open) clauses.push(`ExecutionStatus = 'Running'`);
  if (f.closed) clauses.push(`ExecutionStatus != 'Running'`);
  if (f.since) clauses.push(`StartTime >= ${quoteQueryValue(f.since.toISOString())}`);
  if (f.taskQueue) clauses.push(`TaskQueue = ${quoteQueryValue(f.taskQueue)}`);
  return clauses.join(' AND ');
}

/** One row of `list`, and its `--json` element. */
export interface IncidentRow {
  workflowId: string;
  runId: string;
  status: string;
  executionStatus: string;
  category: string | null;
  severity: string | null;
  startTime: string;
  closeTime: string | null;
  taskQueue: string;
  summary: string | null;
}

const EXECUTION_STATUS_WORDS: Record<string, string> = { RUNNING: 'running', COMPLETED: 'completed', CANCELLED: 'cancelled', FAILED: 'failed', TERMINATED: 'terminated', TIMED_OUT: 'timed out', CONTINUED_AS_NEW: 'continued as new' };
export const executionWord = (name: string) => EXECUTION_STATUS_WORDS[name] ?? name.toLowerCase();

function incidentRow(info: WorkflowExecutionInfo, summary: string | undefined): IncidentRow {
  const sa = info.typedSearchAttributes;
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    status: sa.get(IncidentStatusKey) ?? 'unknown',
    executionStatus: executionWord(info.status.name),
    category: sa.get(IncidentCategoryKey) ?? null,
    severity: sa.get(IncidentSeverityKey) ?? null,
    startTime: info.startTime.toISOString(),
    closeTime: info.closeTime?.toISOString() ?? null,
    taskQueue: info.taskQueue,
    summary: summary ?? null,
  };
}

/** The incidents the query matches, newest first as the server lists them, with their static summary. */
export async function listIncidents(client: Client, query: string, limit: number): Promise<IncidentRow[]> {
  const infos: WorkflowExecutionInfo[] = [];
  for await (const info of client.workflow.list({ query, pageSize: limit })) {
    infos.push(info);
    if (infos.length >= limit) break;
  }
  // The list answer has no user metadata: one describe per row (at most --limit) for the summary.
  const summaries = await Promise.all(
    infos.map((i) =>
      client.workflow
        .getHandle(i.workflowId, i.runId)
        .describe()
        .then(async (d) => {
          const own = await d.staticSummary();
          // A run continued as new carries no static summary (SDK 1.24): the first run of the chain has it.
          const first = d.raw.workflowExecutionInfo?.firstRunId;
          if (own !== undefined || !first || first === i.runId) return own;
          return client.workflow.getHandle(i.workflowId, first).describe().then((f) => f.staticSummary());
        })
        .catch(() => undefined),
    ),
  );
  return infos.map((info, n) => incidentRow(info, summaries[n]));
}

/** A row's status: the incident's own, and how the workflow ended when that says more (terminated, failed). */
const rowStatus = (r: IncidentRow) => (['running', 'completed', 'cancelled'].includes(r.executionStatus) ? r.status : `${r.status} (${r.executionStatus})`);

/** A summary longer than this is cut in `list` (`show` prints it whole). */
const LIST_SUMMARY_MAX = 120;

/** `list` as a table: one row per incident, whatever its text holds (cells are one line of visible text). */
export function formatIncidentTable(rows: IncidentRow[]): string {
  const table = [
    ['ID', 'STATUS', 'CATEGORY', 'SEVERITY', 'STARTED', 'SUMMARY'],
    ...rows.map((r) =>
      [r.workflowId, rowStatus(r), r.category ?? '-', r.severity ?? '-', r.startTime.replace(/\.\d+Z$/, 'Z'), r.summary ?? ''].map((cell, c) => terminalLine(cell, c === 5 ? LIST_SUMMARY_MAX : 200)),
    ),
  ];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  return table.map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd()).join('\n');
}

/** `watch --interval`: how often to ask, bounded so a typo neither floods the server nor sleeps for hours. */
export const watchFlagsSchema = z.object({ interval: durationSchema(200, 60_000) });

/**
 * Follow an incident until it closes: new timeline lines as they appear, the pending approvals and
 * steps to do by hand when they change, then the final status. True when it ended `resolved`.
 * Ctrl-C stops watching (not the incident) and counts as not resolved.
 */
export async function watchIncident(client: Client, workflowId: string, intervalMs: number, out: (line: string) => void = console.log): Promise<boolean> {
  const handle = await existingWorkflow(client, workflowId, INCIDENT);
  let printed = 0;
  let lastPending = '';
  let lastStatus = '';
  const show = (s: IncidentState) => {
    if (s.status !== lastStatus) out(`status: ${terminalLine(s.status)}`);
    lastStatus = s.status;
    for (const e of s.timeline.slice(printed)) out(formatTimelineEvent(e));
    printed = Math.max(printed, s.timeline.length);
    const pending = formatPending(s).join('\n');
    if (pending !== lastPending) out(pending);
    lastPending = pending;
  };
  let stopped = false;
  let wake = () => {};
  const onSigint = () => {
    stopped = true;
    wake();
  };
  process.on('SIGINT', onSigint);
  try {
    out(`watching ${workflowId} every ${formatDuration(intervalMs)} (Ctrl-C stops watching, not the incident)`);
    for (;;) {
      const d = await handle.describe();
      if (d.status.name === 'COMPLETED') {
        const final = (await handle.result()) as IncidentState;
        show(final);
        out(`final status: ${final.status}`);
        return final.status === 'resolved';
      }
      if (d.status.name !== 'RUNNING') {
        // The last lines (the compensations of a cancelled incident) come from a worker's replay, if one answers.
        await client
          .withDeadline(Date.now() + 5000, () => handle.query(getIncidentState))
          .then(show)
          .catch(() => undefined);
        out(`final status: ${d.typedSearchAttributes.get(IncidentStatusKey) ?? 'unknown'} (the workflow ${executionWord(d.status.name)})`);
        return false;
      }
      const state = await handle.query(getIncidentState).catch(async (err: unknown) => {
        // Closed between the describe and the query: the next round reports how it ended.
        if ((await handle.describe()).status.name !== 'RUNNING') return undefined;
        throw err;
      });
      if (state) show(state);
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (stopped) break;
    }
    out(`stopped watching ${workflowId}; the incident goes on (status ${lastStatus || 'unknown'}): npm run incident -- watch ${workflowId}`);
    return false;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

