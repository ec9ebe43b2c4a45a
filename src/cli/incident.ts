/**
 * `npm run incident -- <command>`: start, inspect and decide incidents from a terminal. Every
 * argument is validated with the same zod schemas the workflow uses, so a bad flag is refused
 * (and named) before anything reaches Temporal. Flags and exit codes follow docs/cli.md.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { CliArgumentError, describeFlagIssues, existingWorkflow, runCli, withClient } from './common';
import { describeIssues, GATED_STEPS, incidentInputSchema, INCIDENT_CATEGORIES, type IncidentInput } from '../domain';
import {
  approveRequestSchema,
  approveStep,
  confirmRequestSchema,
  confirmStep,
  resolveIncident,
  resolveRequestSchema,
  getIncidentState,
  incidentWorkflow,
  rejectRequestSchema,
  rejectStep,
  requestStep,
  stepRequestSchema,
  type IncidentState,
} from '../workflows/incident';

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const INCIDENT = incidentWorkflow.name;

function parseOrThrow<T>(schema: z.ZodType<T>, raw: unknown, flagOf: Record<string, string> = {}): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new CliArgumentError(describeFlagIssues(parsed.error, flagOf));
  return parsed.data;
}

const workflowIdSchema = z.object({ workflowId: z.string().trim().min(1, 'an incident (workflow) id is required').max(1000) });

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseJsonObject(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('not valid JSON');
  }
}

const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** An update refused by the workflow's validator: print why, exit non-zero. */
async function sendUpdate<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new Error(`refused: ${err.cause?.message ?? err.message}`);
    throw err;
  }
}

const REVOCATION_STEPS: readonly string[] = ['revoke_all_sessions', 'targeted_revocation'];

/**
 * The child revocation workflow of each revocation step: the id recorded in the timeline, or for an
 * approved step still running, the id the playbook gives it (`<incidentId>-<step>`).
 */
export function revocationChildren(s: IncidentState): { step: string; workflowId: string }[] {
  const ids = new Map<string, string>();
  for (const e of s.timeline) {
    const id = e.details?.childWorkflowId;
    if (typeof id === 'string') ids.set(e.step, id);
  }
  for (const r of s.steps) {
    if (REVOCATION_STEPS.includes(r.step) && r.outcome === 'approved' && !ids.has(r.step)) ids.set(r.step, `${s.incidentId}-${r.step}`);
  }
  return [...ids].map(([step, workflowId]) => ({ step, workflowId }));
}

/** The state as an on-call engineer reads it: what it waits for, who may decide, the timeline. */
export function formatState(s: IncidentState): string {
  const lines = [
    `${s.incidentId}: ${s.summary}${s.dryRun ? ' (dry run)' : ''}`,
    `  status ${s.status} · category ${s.category ?? 'unknown'} · severity ${s.severity ?? 'unknown'} · reporter ${s.reporter}`,
    `  waiting for: ${s.waitingFor}`,
  ];
  if (s.triage) lines.push(`  triage (${s.triage.agreement}, rule ${s.triage.rule}): ${s.triage.note}`);
  lines.push(s.pendingApprovals.length ? '  pending approvals:' : '  pending approvals: none');
  for (const p of s.pendingApprovals) {
    lines.push(
      `    ${p.step}: ${p.title} — ${p.approvedBy.length}/${p.approvalsNeeded} approved${p.approvedBy.length ? ` (${p.approvedBy.join(', ')})` : ''}; requested by ${p.requestedBy}; may approve: ${p.eligible.join(', ') || 'nobody on the list'}; ${p.escalated ? 'ESCALATED; ' : `escalates ${p.escalateAt}; `}decide by ${p.decideBy}`,
      `      npm run incident -- approve ${s.incidentId} --step ${p.step} --approver <you>`,
    );
  }
  for (const m of s.manualSteps.filter((x) => !x.outcome)) {
    lines.push(`  to do by hand: ${m.step}: ${m.instructions}; confirm by ${m.confirmBy}`, `      npm run incident -- confirm ${s.incidentId} --step ${m.step} --by <you> --note "<what you did>"`);
  }
  if (s.openItems.length) {
    lines.push('  still open:', ...s.openItems.map((i) => `    - ${i}`));
    if (s.status === 'needs_human') lines.push(`      npm run incident -- resolve ${s.incidentId} --by <you> --summary "<why it is over>"`);
  }
  for (const c of revocationChildren(s)) {
    lines.push(`  revocation of ${c.step}: workflow ${c.workflowId}`, `      npm run revoke -- progress ${c.workflowId}`);
  }
  if (s.attention.length) lines.push('  needs attention:', ...s.attention.map((a) => `    - ${a}`));
  lines.push('  timeline:', ...s.timeline.map((e) => `    ${e.time} ${e.step.padEnd(20)} ${e.actor.padEnd(16)} ${e.description}`));
  return lines.join('\n');
}

/** What the required flags of `start` are for, in its help and in the refusal when one is missing. */
const START_REQUIRED: Record<string, string> = {
  '--reporter': 'who reports the incident',
  '--summary': 'what is broken, in a sentence',
};

export const EXIT_CODES_HELP = `
Exit code:
  0  done (the command was accepted)
  1  refused by the workflow, failed, or Temporal unreachable
  2  usage error (a missing, unknown or bad flag)`;

export function buildProgram(): Command {
  // exitOverride before the subcommands, which inherit it: usage errors reach runCli (exit 2).
  const program = new Command('incident')
    .exitOverride()
    .description('Start, follow and decide Clerk incident workflows (flags and exit codes: docs/cli.md)')
    .showHelpAfterError()
    .addHelpText('after', EXIT_CODES_HELP);

  program
    .command('start')
    .description('start an incident workflow (the same input the UI takes)')
    .option('--category <category>', `one of ${INCIDENT_CATEGORIES.join(', ')} (omit to let triage decide)`)
    .option('--reporter <name>', `${START_REQUIRED['--reporter']} (required unless --input)`)
    .option('--summary <text>', `${START_REQUIRED['--summary']} (required unless --input)`)
    .option('--approver <name>', 'allowed approver (repeat the flag for several)', collect, [])
    .option('--escalate-after <duration>', 'no decision by then: notify again (e.g. "15m")')
    .option('--decide-within <duration>', 'no decision by then: safe default, step not done (e.g. "1h")')
    .option('--probe-timeout <duration>', 'timeout of each triage probe (e.g. "5s")')
    .option('--affected-user <userId>', 'session_issues: a user who has the trouble (repeat); diagnostics look at their sessions', collect, [])
    .option('--revoke-user <userId>', 'session_issues: end the sessions of this user (repeat), after an approval', collect, [])
    .option('--dry-run', 'plan and record, change nothing')
    .option('--input <json>', 'the whole input as one JSON object (instead of the flags)', parseJsonObject)
    .option('--id <workflowId>', 'workflow id (default: incident-<random>)')
    .option('--wait', 'wait for the incident to end and print its final state')
    .action(async (opts: Record<string, unknown>) => {
      const timeouts = defined({ escalateAfter: opts.escalateAfter, decideWithin: opts.decideWithin, probe: opts.probeTimeout });
      const revokeUsers = opts.revokeUser as string[];
      const affectedUsers = opts.affectedUser as string[];
      if (opts.input !== undefined) {
        // --input is the whole input: a flag beside it would be silently dropped, so refuse.
        const beside = ['category', 'reporter', 'summary', 'escalateAfter', 'decideWithin', 'probeTimeout', 'dryRun']
          .filter((k) => opts[k] !== undefined)
          .concat((opts.approver as string[]).length ? ['approver'] : [], revokeUsers.length ? ['revokeUser'] : [], affectedUsers.length ? ['affectedUser'] : []);
        if (beside.length) {
          throw new CliArgumentError(`--input: it is the whole input; put ${beside.map((k) => `--${kebab(k)}`).join(', ')} inside the JSON instead of beside it`);
        }
      }
      const raw =
        opts.input ??
        defined({
          category: opts.category,
          reporter: opts.reporter,
          summary: opts.summary,
          approvers: (opts.approver as string[]).length ? opts.approver : undefined,
          timeouts: Object.keys(timeouts).length ? timeouts : undefined,
          targetedRevocation: revokeUsers.length ? { userIds: revokeUsers } : undefined,
          affectedUserIds: affectedUsers.length ? affectedUsers : undefined,
          dryRun: opts.dryRun === true ? true : undefined,
        });
      const parsed = incidentInputSchema.safeParse(raw);
      if (!parsed.success) {
        throw new CliArgumentError(
          opts.input
            ? describeIssues(parsed.error, 'input')
            : describeFlagIssues(parsed.error, {
                approvers: '--approver',
                'timeouts.probe': '--probe-timeout',
                'timeouts.escalateAfter': '--escalate-after',
                'timeouts.decideWithin': '--decide-within',
                targetedRevocation: '--revoke-user',
                affectedUserIds: '--affected-user',
              }, START_REQUIRED),
        );
      }
      // The workflow parses its input itself: send what was validated, as typed (durations stay text).
      const input = raw as IncidentInput;
      await withClient(async (client, env) => {
        const workflowId = typeof opts.id === 'string' ? opts.id : `incident-${randomUUID()}`;
        const handle = await client.workflow.start(incidentWorkflow, {
          taskQueue: env.TEMPORAL_TASK_QUEUE,
          workflowId,
          args: [input],
          staticSummary: `Incident${parsed.data.category ? ` (${parsed.data.category})` : ''}: ${parsed.data.summary}`,
          staticDetails: `Reported by ${parsed.data.reporter}. Approvers: ${parsed.data.approvers.join(', ') || 'none'}.${parsed.data.dryRun ? ' Dry run.' : ''}`,
        });
        console.log(`started ${handle.workflowId}`);
        console.log(`follow it: npm run incident -- show ${handle.workflowId}`);
        if (opts.wait) console.log(formatState(await handle.result()));
      });
    });

  program
    .command('show')
    .description('print the state, the pending approvals and the timeline of an incident')
    .argument('<workflowId>')
    .option('--json', 'print the whole state as JSON')
    .action(async (workflowId: string, opts: { json?: boolean }) => {
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
      await withClient(async (client) => {
        const state = await (await existingWorkflow(client, id, INCIDENT)).query(getIncidentState);
        console.log(opts.json ? JSON.stringify(state, null, 2) : formatState(state));
      });
    });

  const stepHelp = `one of ${GATED_STEPS.join(', ')}`;

  // Approve and reject are one command shape: the step, who decides, and a comment or a reason.
  const decisions = [
    {
      name: 'approve',
      description: 'approve a pending step (critical steps need two different approvers)',
      who: 'who approves (must be on the incident approver list)',
      text: { flag: '--comment <text>', key: 'comment', help: 'why, for the timeline', required: false },
      prepare(raw: unknown) {
        const req = parseOrThrow(approveRequestSchema, raw);
        return (handle: WorkflowHandle) => handle.executeUpdate(approveStep, { args: [req] });
      },
    },
    {
      name: 'reject',
      description: 'reject a pending step (a reason is required)',
      who: 'who rejects (must be on the incident approver list)',
      text: { flag: '--reason <text>', key: 'reason', help: 'why not', required: true },
      prepare(raw: unknown) {
        const req = parseOrThrow(rejectRequestSchema, raw);
        return (handle: WorkflowHandle) => handle.executeUpdate(rejectStep, { args: [req] });
      },
    },
  ] as const;
  for (const d of decisions) {
    const command = program
      .command(d.name)
      .description(d.description)
      .argument('<workflowId>')
      .requiredOption('--step <step>', stepHelp)
      .requiredOption('--approver <name>', d.who);
    if (d.text.required) command.requiredOption(d.text.flag, d.text.help);
    else command.option(d.text.flag, d.text.help);
    command.action(async (workflowId: string, opts: Record<string, unknown>) => {
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
      // Validated before connecting: a bad flag is refused without a server.
      const send = d.prepare(defined({ step: opts.step, approver: opts.approver, [d.text.key]: opts[d.text.key] }));
      await withClient(async (client) => {
        const handle = await existingWorkflow(client, id, INCIDENT);
        const decision = await sendUpdate(() => send(handle));
        console.log(decision.message);
      });
    });
  }

  program
    .command('confirm')
    .description('confirm that a step the runbook cannot do yet was done by hand (the steps after it wait for this)')
    .argument('<workflowId>')
    .requiredOption('--step <step>', 'the step done by hand, e.g. rotate_secret_key')
    .requiredOption('--by <name>', 'who did it (the reporter or a listed approver)')
    .requiredOption('--note <text>', 'what was done: which key, deployment or flag')
    .action(async (workflowId: string, opts: Record<string, unknown>) => {
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
      const req = parseOrThrow(confirmRequestSchema, defined({ step: opts.step, confirmedBy: opts.by, note: opts.note }), { confirmedBy: '--by' });
      await withClient(async (client) => {
        const handle = await existingWorkflow(client, id, INCIDENT);
        const answer = await sendUpdate(() => handle.executeUpdate(confirmStep, { args: [req] }));
        console.log(answer.message);
      });
    });

  program
    .command('resolve')
    .description('resolve an incident that needs a human (status needs_human): the commander says it is over')
    .argument('<workflowId>')
    .requiredOption('--by <name>', 'who resolves it (the reporter or a listed approver)')
    .requiredOption('--summary <text>', 'why it is over: what fixed it, or why nothing more will be done')
    .action(async (workflowId: string, opts: Record<string, unknown>) => {
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
      const req = parseOrThrow(resolveRequestSchema, defined({ resolvedBy: opts.by, summary: opts.summary }), { resolvedBy: '--by' });
      await withClient(async (client) => {
        const handle = await existingWorkflow(client, id, INCIDENT);
        const answer = await sendUpdate(() => handle.executeUpdate(resolveIncident, { args: [req] }));
        console.log(answer.message);
      });
    });

  program
    .command('request')
    .description('request an optional step of the playbook (session_issues: targeted_revocation)')
    .argument('<workflowId>')
    .requiredOption('--step <step>', stepHelp)
    .requiredOption('--requester <name>', 'who asks (the reporter or a listed approver; cannot approve it then)')
    .option('--user <userId>', 'targeted_revocation: a user whose sessions to end (repeat)', collect, [])
    .option('--reason <text>', 'why, for the timeline')
    .action(async (workflowId: string, opts: Record<string, unknown>) => {
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
      const users = opts.user as string[];
      const req = parseOrThrow(
        stepRequestSchema,
        defined({ step: opts.step, requester: opts.requester, reason: opts.reason, userIds: users.length ? users : undefined }),
        { userIds: '--user' },
      );
      await withClient(async (client) => {
        const handle = await existingWorkflow(client, id, INCIDENT);
        const result = await sendUpdate(() => handle.executeUpdate(requestStep, { args: [req] }));
        console.log(result.message);
      });
    });

  return program;
}

/** The command as `npm run incident` runs it; `argv` as `process.argv`. */
export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}

if (require.main === module) runCli(() => main(process.argv));
