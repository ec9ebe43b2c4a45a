/**
 * `npm run incident -- <command>`: start, inspect and decide incidents from a terminal. Every
 * argument is validated with the same zod schemas the workflow uses, so a bad flag is refused
 * (and named) before anything reaches Temporal. Flags and exit codes follow docs/cli.md.
 * The commands that send an update are a table in incident-updates.ts; what the others print is
 * in incident-views.ts.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { readRoster } from '../roster/load';
import { inputNameProblems } from '../roster/resolve';
import { findRunningStart, runtimeFilePath } from '../runtime-file';
import { Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { CliArgumentError, collect, defined, describeFlagIssues, existingWorkflow, operatorIdentity, parseOrThrow, runCli, withClient } from './common';
import type { Env } from '../config';
import { describeIssues, incidentInputSchema, INCIDENT_CATEGORIES, INCIDENT_STATUSES, SEVERITIES, type IncidentInput } from '../domain';
import { INCIDENT_WORKFLOW_TASK_TIMEOUT, IncidentStatusKey } from '../shared';
import { fetchReview, printReview } from '../review/fetch';
import { cancelRequestSchema, getIncidentState, incidentWorkflow, requestCancel } from '../workflows/incident';
import { actionText } from '../roster/policy';
import { getRevocationProgress } from '../workflows/revoke-sessions';
import { addSignCommand, keySpecSchema, signDecision } from './sign';
import { addUpdateCommand, DECISION_COMMANDS, example, INCIDENT, parseWorkflowId, sendUpdate, SIGN_FLAG, UPDATE_COMMANDS } from './incident-updates';
import {
  buildListQuery,
  childWorkflows,
  executionWord,
  formatIncidentTable,
  formatState,
  listFlagsSchema,
  listIncidents,
  operatorFlagSchema,
  watchFlagsSchema,
  watchIncident,
} from './incident-views';
import type { RevocationProgress } from '../revoke-sessions';
import { terminalLine } from '../render-safe';

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

const cancelFlagsSchema = z.object({ reason: z.string().trim().min(1, 'must not be empty').max(1000).optional() });

function parseJsonObject(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('not valid JSON');
  }
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


/**
 * An incident id already used: refused with what it is. A closed incident's id is never reused
 * (`REJECT_DUPLICATE`), or its record would be two incidents.
 */
async function refuseUsedId(client: Client, workflowId: string, err: unknown): Promise<never> {
  if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  const earlier = await client.workflow.getHandle(workflowId).describe().catch(() => undefined);
  const show = `npm run incident -- show ${workflowId}`;
  if (earlier && earlier.status.name !== 'RUNNING') {
    throw new CliArgumentError(`--id ${workflowId}: an incident with this id already ran and is closed (${earlier.status.name.toLowerCase()}${earlier.closeTime ? ` at ${earlier.closeTime.toISOString()}` : ''}); an incident id is never reused: choose another id or leave --id out (its record: ${show})`);
  }
  throw new CliArgumentError(`--id ${workflowId}: an incident with this id is already running; choose another id or leave --id out (follow it: ${show})`);
}
export function buildProgram(): Command {
  // exitOverride before the subcommands, which inherit it: usage errors reach runCli (exit 2).
  const program = new Command('incident')
    .exitOverride()
    .description('Start, follow and decide Clerk incident workflows (flags and exit codes: docs/cli.md)')
    .showHelpAfterError('(add --help for usage)')
    .option('--as <operator>', 'who runs the command, recorded by Temporal as the client identity (default: INCIDENT_OPERATOR, else <os user>@<hostname>)')
    .addHelpText('after', `${example('list --open', 'watch incident-3f9c…', 'approve incident-3f9c… --step emergency_bypass --approver bob@example.com --as bob@example.com')}\n${EXIT_CODES_HELP}`);

  // Every command that talks to Temporal does so as the operator; --as is validated before connecting.
  const connect = <T>(fn: (client: Client, env: Env) => Promise<T>): Promise<T> => {
    const { as } = parseOrThrow(operatorFlagSchema, { as: program.opts<{ as?: string }>().as });
    return withClient(fn, operatorIdentity(as));
  };

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
    .addHelpText('after', example('start --reporter alice@example.com --summary "nobody can sign in" --approver bob@example.com --approver carol@example.com'))
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
      await checkNamesAgainstRoster(parsed.data, opts.input !== undefined);
      await connect(async (client, env) => {
        const workflowId = typeof opts.id === 'string' ? opts.id : `incident-${randomUUID()}`;
        const handle = await client.workflow
          .start(incidentWorkflow, {
            taskQueue: env.TEMPORAL_TASK_QUEUE,
            workflowId,
            args: [input],
            // An incident id names one incident for ever: its history is that incident's record.
            workflowIdReusePolicy: 'REJECT_DUPLICATE',
            workflowTaskTimeout: INCIDENT_WORKFLOW_TASK_TIMEOUT,
            // One line by design: the UI and `list` show it as the incident's title.
            staticSummary: terminalLine(`Incident${parsed.data.category ? ` (${parsed.data.category})` : ''}: ${parsed.data.summary}`),
            staticDetails: `Reported by ${parsed.data.reporter}. Approvers: ${parsed.data.approvers.join(', ') || 'none'}.${parsed.data.dryRun ? ' Dry run.' : ''}`,
          })
          .catch((err: unknown) => refuseUsedId(client, workflowId, err));
        // The worker refuses names its roster does not know at once: say so rather than "started".
        const refused = await refusedAtStart(handle);
        if (refused) throw new Error(`refused: ${refused}`);
        console.log(`started ${handle.workflowId}`);
        console.log(`follow it: npm run incident -- show ${handle.workflowId}`);
        if (opts.wait) console.log(formatState(await handle.result()));
      });
    });

  program
    .command('list')
    .description('list incidents (newest first) through their search attributes')
    .option('--status <status>', `${INCIDENT_STATUSES.join(', ')} (repeat for several)`, collect, [])
    .option('--category <category>', INCIDENT_CATEGORIES.join(', '))
    .option('--severity <severity>', SEVERITIES.join(', '))
    .option('--open', 'only incidents still running')
    .option('--closed', 'only incidents that have ended')
    .option('--since <when>', 'started since a duration ago ("2h", "7 days") or an ISO time')
    .option('--task-queue <name>', 'only incidents on this task queue (a worker of its own, e.g. in tests)')
    .option('--limit <count>', 'at most this many (1 to 1000)', '20')
    .option('--json', 'print the rows as JSON')
    .addHelpText('after', example('list --open --severity critical', 'list --status needs_human --status monitoring --since 24h --json'))
    .action(async (opts: Record<string, unknown>) => {
      const { json, ...flags } = opts;
      const filters = parseOrThrow(listFlagsSchema, defined(flags), { status: '--status' });
      const query = buildListQuery(filters);
      await connect(async (client) => {
        const rows = await listIncidents(client, query, filters.limit);
        if (json) console.log(JSON.stringify(rows, null, 2));
        else console.log(rows.length ? formatIncidentTable(rows) : `no incidents match ${query}`);
      });
    });

  // `status` is `show` under the name operators reach for first; a command of its own, so docs and help name it.
  for (const [name, description] of [
    ['show', 'print the state, the pending approvals and the timeline of an incident'],
    ['status', 'the same as show'],
  ] as const) {
    program
      .command(name)
      .description(description)
      .argument('<workflowId>')
      .option('--json', 'print the whole state as JSON')
      .addHelpText('after', example(`${name} incident-3f9c…`, `${name} incident-3f9c… --json`))
      .action(async (workflowId: string, opts: { json?: boolean }) => {
        const id = parseWorkflowId(workflowId);
        await connect(async (client) => {
          const state = await (await existingWorkflow(client, id, INCIDENT)).query(getIncidentState);
          if (opts.json) return console.log(JSON.stringify(state, null, 2));
          // A child that has not started, or whose worker is gone, simply has no bar.
          const progress = new Map<string, RevocationProgress>();
          for (const c of childWorkflows(state).filter((child) => child.kind === 'revocation')) {
            const p = await client.workflow.getHandle(c.workflowId).query(getRevocationProgress).catch(() => undefined);
            if (p) progress.set(c.workflowId, p);
          }
          console.log(formatState(state, progress));
        });
      });
  }

  program
    .command('watch')
    .description('follow an incident live until it closes; exit 0 only when it ends resolved')
    .argument('<workflowId>')
    .option('--interval <duration>', 'how often to look (200ms to 1m)', '2s')
    .addHelpText('after', example('watch incident-3f9c… --interval 5s'))
    .action(async (workflowId: string, opts: Record<string, unknown>) => {
      const id = parseWorkflowId(workflowId);
      const { interval } = parseOrThrow(watchFlagsSchema, { interval: opts.interval });
      await connect(async (client) => {
        if (!(await watchIncident(client, id, interval))) process.exitCode = 1;
      });
    });

  program
    .command('cancel')
    .description('cancel an incident: it runs the compensations of the steps already applied and ends cancelled')
    .argument('<workflowId>')
    .option('--reason <text>', 'why, recorded with the cancellation request in history')
    .option('--by <name>', "who cancels: checked by the incident's roster (required when it has one) and recorded")
    .option(SIGN_FLAG.flags, SIGN_FLAG.help)
    .addHelpText('after', example('cancel incident-3f9c… --by alice@example.com --reason "false alarm: the status page test was ours"'))
    .action(async (workflowId: string, opts: Record<string, unknown>) => {
      const id = parseWorkflowId(workflowId);
      const { reason } = parseOrThrow(cancelFlagsSchema, defined({ reason: opts.reason }));
      const asked = opts.by === undefined ? undefined : parseOrThrow(cancelRequestSchema, defined({ cancelledBy: opts.by, reason }), { cancelledBy: '--by' });
      const key = opts.sign === undefined ? undefined : parseOrThrow(z.object({ sign: keySpecSchema }), { sign: opts.sign }).sign;
      if (key !== undefined && !asked) throw new CliArgumentError('--sign: name who cancels with --by');
      await connect(async (client) => {
        const handle = await existingWorkflow(client, id, INCIDENT);
        const d = await handle.describe();
        if (d.status.name !== 'RUNNING') {
          const status = d.typedSearchAttributes.get(IncidentStatusKey) ?? 'unknown';
          throw new Error(`${id} is already closed (status ${status}, the workflow ${executionWord(d.status.name)}): nothing to cancel; npm run incident -- show ${id}`);
        }
        if (!asked && (await handle.query(getIncidentState)).roster) {
          throw new CliArgumentError(`--by: ${id} decides by the on-call roster: name who cancels (--by <you>), whom its policy must allow`);
        }
        if (asked) {
          // The roster's check first (requestCancel): refused, nothing is cancelled.
          const signed = key === undefined ? {} : await signDecision(handle, { decision: 'cancel', step: 'incident', approver: asked.cancelledBy, text: actionText(asked), action: true }, key);
          const answer = await sendUpdate((updateId) => handle.executeUpdate(requestCancel, { args: [{ ...asked, ...signed }], updateId }));
          console.log(terminalLine(answer.message));
        }
        // handle.cancel() takes no reason; the service call records it on WorkflowExecutionCancelRequested.
        await client.workflowService.requestCancelWorkflowExecution({
          namespace: client.options.namespace,
          identity: client.options.identity,
          requestId: randomUUID(),
          workflowExecution: { workflowId: id, runId: d.runId },
          ...(reason ? { reason } : {}),
        });
        console.log(terminalLine(`cancellation of ${id} requested by ${client.options.identity}${reason ? `: ${reason}` : ''}`));
        console.log('the incident now undoes the steps it applied, newest first (compensations in its timeline), then ends cancelled');
        console.log(`follow it: npm run incident -- watch ${id}`);
      });
    });

  for (const c of DECISION_COMMANDS) addUpdateCommand(program, connect, c);
  addSignCommand(program, connect, example('sign incident-3f9c… approve --step emergency_bypass --approver bob@example.com --key ~/.ssh/id_ed25519'));
  for (const c of UPDATE_COMMANDS) addUpdateCommand(program, connect, c);

  program
    .command('review')
    .description('the post-incident review, from the event history and the state: Markdown (or --json), printed or written to --out')
    .argument('<workflowId>')
    .option('--out <file>', 'write it to this file instead of printing it')
    .option('--json', 'the review as JSON')
    .addHelpText('after', example('review incident-3f9c…', 'review incident-3f9c… --out review.md', 'review incident-3f9c… --json'))
    .action(async (workflowId: string, opts: { out?: string; json?: boolean }) => {
      const id = parseWorkflowId(workflowId);
      await connect(async (client, env) => printReview(await fetchReview(await existingWorkflow(client, id, INCIDENT), env.APPROVER_IDENTITIES), opts));
    });

  return program;
}

/** The command as `npm run incident` runs it; `argv` as `process.argv`. */
export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}

if (require.main === module) runCli(() => main(process.argv));

/** The roster this CLI can see: ROSTER_FILE, else the running npm start's (its runtime file). */
function localRosterFile(): string | undefined {
  const fromEnv = process.env.ROSTER_FILE?.trim();
  if (fromEnv) return fromEnv;
  const running = findRunningStart(runtimeFilePath());
  return running.kind === 'found' ? running.info.rosterFile : undefined;
}

/** Names the roster does not know are refused before anything starts, the flag named. */
async function checkNamesAgainstRoster(input: { reporter: string; approvers: string[] }, asJson: boolean): Promise<void> {
  const file = localRosterFile();
  if (!file) return;
  const roster = await readRoster(file).catch(() => undefined);
  if (!roster) return; // the worker's own check still applies
  const problems = inputNameProblems(roster, input).map((p) =>
    p.field === 'reporter' ? `${asJson ? 'input.reporter' : '--reporter'}: ${p.message}` : `${asJson ? `input.approvers[${p.index}]` : `--approver ${JSON.stringify(p.ref)}`}: ${p.message}`,
  );
  if (problems.length) throw new CliArgumentError(`${problems.join('; ')} (roster ${file})`);
}

/** The worker's refusal of the input (InvalidIncidentInput), when it comes within a few seconds. */
async function refusedAtStart(handle: WorkflowHandle): Promise<string | undefined> {
  for (let i = 0; i < 12; i += 1) {
    const d = await handle.describe();
    if (d.status.name === 'FAILED') {
      const err = await handle.result().then(() => undefined, (e: unknown) => e);
      return err instanceof WorkflowFailedError ? (err.cause?.message ?? err.message) : String(err);
    }
    if (d.status.name !== 'RUNNING' || d.historyLength > 10) return undefined;
    await new Promise((r) => setTimeout(r, 250));
  }
  return undefined;
}
