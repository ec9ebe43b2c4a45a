/**
 * `npm run incident -- <command>`: start, inspect and decide incidents from a terminal. Every
 * argument is validated with the same zod schemas the workflow uses, so a bad flag is refused
 * (and named) before anything reaches Temporal. Flags and exit codes follow docs/cli.md.
 * One concern, the twelve command definitions (hence over 400 lines); what they print is in
 * incident-views.ts.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { CliArgumentError, describeFlagIssues, existingWorkflow, operatorIdentity, runCli, withClient } from './common';
import type { Env } from '../config';
import { sendUpdate as resend } from '../temporal/updates';
import {
  describeIssues,
  GATED_STEPS,
  incidentInputSchema,
  INCIDENT_CATEGORIES,
  INCIDENT_STATUSES,
  SEVERITIES,
  type IncidentInput,
} from '../domain';
import { IncidentStatusKey } from '../shared';
import { fetchReview, printReview } from '../review/fetch';
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
  extendBypass,
  extendBypassRequestSchema,
} from '../workflows/incident';
import { getRevocationProgress } from '../workflows/revoke-sessions';
import { addSignCommand, keySpecSchema, signDecision } from './sign';
import { confirmOldKeyDeleted, confirmOldKeyDeletedRequestSchema, provideNewKey, provideNewKeyRequestSchema } from '../workflows/incident';
import {
  buildListQuery,
  executionWord,
  formatIncidentTable,
  formatState,
  listFlagsSchema,
  listIncidents,
  operatorFlagSchema,
  revocationChildren,
  watchFlagsSchema,
  watchIncident,
} from './incident-views';
import type { RevocationProgress } from '../revoke-sessions';

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const INCIDENT = incidentWorkflow.name;

function parseOrThrow<T>(schema: z.ZodType<T>, raw: unknown, flagOf: Record<string, string> = {}): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new CliArgumentError(describeFlagIssues(parsed.error, flagOf));
  return parsed.data;
}

const cancelFlagsSchema = z.object({ reason: z.string().trim().min(1, 'must not be empty').max(1000).optional() });

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
/** Sends an update (src/temporal/updates.ts: one update id, sent again without an answer); a refusal becomes the CLI's error. */
async function sendUpdate<T>(run: (updateId: string) => Promise<T>): Promise<T> {
  try {
    return await resend(run, randomUUID(), { onResend: (err) => console.error(`no answer yet (${err instanceof Error ? err.message : String(err)}): sending it again with the same update id`) });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new Error(`refused: ${err.cause?.message ?? err.message}`);
    throw err;
  }
}

const example = (...commands: string[]) => `\nExample${commands.length > 1 ? 's' : ''}:\n${commands.map((c) => `  npm run incident -- ${c}`).join('\n')}`;

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
      await connect(async (client, env) => {
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
        const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
        await connect(async (client) => {
          const state = await (await existingWorkflow(client, id, INCIDENT)).query(getIncidentState);
          if (opts.json) return console.log(JSON.stringify(state, null, 2));
          // A child that has not started, or whose worker is gone, simply has no bar.
          const progress = new Map<string, RevocationProgress>();
          for (const c of revocationChildren(state)) {
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
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
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
    .addHelpText('after', example('cancel incident-3f9c… --reason "false alarm: the status page test was ours"'))
    .action(async (workflowId: string, opts: Record<string, unknown>) => {
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
      const { reason } = parseOrThrow(cancelFlagsSchema, defined({ reason: opts.reason }));
      await connect(async (client) => {
        const handle = await existingWorkflow(client, id, INCIDENT);
        const d = await handle.describe();
        if (d.status.name !== 'RUNNING') {
          const status = d.typedSearchAttributes.get(IncidentStatusKey) ?? 'unknown';
          throw new Error(`${id} is already closed (status ${status}, the workflow ${executionWord(d.status.name)}): nothing to cancel; npm run incident -- show ${id}`);
        }
        // handle.cancel() takes no reason; the service call records it on WorkflowExecutionCancelRequested.
        await client.workflowService.requestCancelWorkflowExecution({
          namespace: client.options.namespace,
          identity: client.options.identity,
          requestId: randomUUID(),
          workflowExecution: { workflowId: id, runId: d.runId },
          ...(reason ? { reason } : {}),
        });
        console.log(`cancellation of ${id} requested by ${client.options.identity}${reason ? `: ${reason}` : ''}`);
        console.log('the incident now undoes the steps it applied, newest first (compensations in its timeline), then ends cancelled');
        console.log(`follow it: npm run incident -- watch ${id}`);
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
      example: 'approve incident-3f9c… --step emergency_bypass --approver bob@example.com --comment "status page confirms the outage"',
      prepare(raw: unknown) {
        const req = parseOrThrow(approveRequestSchema, raw);
        return { req, text: req.comment ?? '', send: (handle: WorkflowHandle, signed: object, updateId: string) => handle.executeUpdate(approveStep, { args: [{ ...req, ...signed }], updateId }) };
      },
    },
    {
      name: 'reject',
      description: 'reject a pending step (a reason is required)',
      who: 'who rejects (must be on the incident approver list)',
      text: { flag: '--reason <text>', key: 'reason', help: 'why not', required: true },
      example: 'reject incident-3f9c… --step revoke_all_sessions --approver carol@example.com --reason "only one user affected"',
      prepare(raw: unknown) {
        const req = parseOrThrow(rejectRequestSchema, raw);
        return { req, text: req.reason, send: (handle: WorkflowHandle, signed: object, updateId: string) => handle.executeUpdate(rejectStep, { args: [{ ...req, ...signed }], updateId }) };
      },
    },
  ] as const;
  for (const d of decisions) {
    const command = program
      .command(d.name)
      .description(d.description)
      .argument('<workflowId>')
      .requiredOption('--step <step>', stepHelp)
      .requiredOption('--approver <name>', d.who)
      .option('--sign <key file | agent>', 'sign the decision with your SSH key (docs/signed-approvals.md): a private key file, a public key file whose key is in ssh-agent, or agent');
    if (d.text.required) command.requiredOption(d.text.flag, d.text.help);
    else command.option(d.text.flag, d.text.help);
    command.addHelpText('after', example(d.example));
    command.action(async (workflowId: string, opts: Record<string, unknown>) => {
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
      // Validated before connecting: a bad flag is refused without a server.
      const { req, text, send } = d.prepare(defined({ step: opts.step, approver: opts.approver, [d.text.key]: opts[d.text.key] }));
      const key = opts.sign === undefined ? undefined : parseOrThrow(z.object({ sign: keySpecSchema }), { sign: opts.sign }).sign;
      await connect(async (client) => {
        const handle = await existingWorkflow(client, id, INCIDENT);
        const signed = key === undefined ? {} : await signDecision(handle, { decision: d.name, step: req.step, approver: req.approver, text }, key);
        const decision = await sendUpdate((updateId) => send(handle, signed, updateId));
        console.log(decision.message);
      });
    });
  }

  addSignCommand(program, connect, example('sign incident-3f9c… approve --step emergency_bypass --approver bob@example.com --key ~/.ssh/id_ed25519'));

  program
    .command('confirm')
    .description('confirm that a step the runbook cannot do yet was done by hand (the steps after it wait for this)')
    .argument('<workflowId>')
    .requiredOption('--step <step>', 'the step done by hand, e.g. rotate_secret_key')
    .requiredOption('--by <name>', 'who did it (the reporter or a listed approver)')
    .requiredOption('--note <text>', 'what was done: which key, deployment or flag')
    .addHelpText('after', example('confirm incident-3f9c… --step rotate_secret_key --by bob@example.com --note "new sk_live key deployed, old one deleted"'))
    .action(async (workflowId: string, opts: Record<string, unknown>) => {
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
      const req = parseOrThrow(confirmRequestSchema, defined({ step: opts.step, confirmedBy: opts.by, note: opts.note }), { confirmedBy: '--by' });
      await connect(async (client) => {
        const handle = await existingWorkflow(client, id, INCIDENT);
        const answer = await sendUpdate((updateId) => handle.executeUpdate(confirmStep, { args: [req], updateId }));
        console.log(answer.message);
      });
    });

  // The key rotation's two updates (docs/key-rotation.md); a raw key is refused here, before anything is sent.
  program
    .command('provide-key')
    .description('key rotation: where the new Clerk secret key is (a reference, never the key)')
    .argument('<workflowId>')
    .requiredOption('--ref <reference>', 'env:NAME, file:/path or vault:mount/path#field')
    .requiredOption('--by <name>', 'who provides it (the reporter or a listed approver)')
    .option('--note <text>', 'e.g. "added in the Dashboard"')
    .addHelpText('after', example('provide-key incident-3f9c… --ref vault:secret/clerk/prod#next_secret_key --by bob@example.com'))
    .action(async (workflowId: string, opts: Record<string, unknown>) => {
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
      const req = parseOrThrow(provideNewKeyRequestSchema, defined({ ref: opts.ref, providedBy: opts.by, note: opts.note }), { providedBy: '--by' });
      await connect(async (client) => {
        const handle = await existingWorkflow(client, id, INCIDENT);
        console.log((await sendUpdate((updateId) => handle.executeUpdate(provideNewKey, { args: [req], updateId }))).message);
      });
    });
  program
    .command('key-deleted')
    .description('key rotation: the old key is deleted in the Clerk Dashboard (the runbook then proves it dead)')
    .argument('<workflowId>')
    .requiredOption('--by <name>', 'who deleted it (the reporter or a listed approver)')
    .option('--note <text>', 'what was done')
    .addHelpText('after', example('key-deleted incident-3f9c… --by bob@example.com'))
    .action(async (workflowId: string, opts: Record<string, unknown>) => {
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
      const req = parseOrThrow(confirmOldKeyDeletedRequestSchema, defined({ confirmedBy: opts.by, note: opts.note }), { confirmedBy: '--by' });
      await connect(async (client) => {
        const handle = await existingWorkflow(client, id, INCIDENT);
        console.log((await sendUpdate((updateId) => handle.executeUpdate(confirmOldKeyDeleted, { args: [req], updateId }))).message);
      });
    });

  program
    .command('extend')
    .description('emergency bypass: keep it on longer (an approver; never past BYPASS_MAX_DURATION in all)')
    .argument('<workflowId>')
    .requiredOption('--by <name>', 'the approver who extends it')
    .requiredOption('--for <duration>', 'how much longer, e.g. 30m')
    .requiredOption('--reason <text>', 'why auth stays bypassed')
    .addHelpText('after', example('extend incident-3f9c… --by bob@example.com --for 30m --reason "Clerk expects recovery in 20 minutes"'))
    .action(async (workflowId: string, opts: Record<string, unknown>) => {
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
      // Checked here, sent as given: the workflow parses the duration itself.
      const req = { approver: String(opts.by), extendBy: String(opts.for), reason: String(opts.reason) };
      parseOrThrow(extendBypassRequestSchema, req, { approver: '--by', extendBy: '--for', reason: '--reason' });
      await connect(async (client) => {
        const handle = await existingWorkflow(client, id, INCIDENT);
        console.log((await sendUpdate((updateId) => handle.executeUpdate(extendBypass, { args: [req], updateId }))).message);
      });
    });

  program
    .command('resolve')
    .description('resolve an incident that needs a human (status needs_human): the commander says it is over')
    .argument('<workflowId>')
    .requiredOption('--by <name>', 'who resolves it (the reporter or a listed approver)')
    .requiredOption('--summary <text>', 'why it is over: what fixed it, or why nothing more will be done')
    // For the post-incident review; each optional (the review says "not given").
    .option('--root-cause <text>', 'the root cause')
    .option('--trigger <text>', 'what set it off')
    .option('--detection <how>', 'monitoring_alert, user_report or manual')
    .option('--data-loss <none|partial>', 'whether data was lost')
    .option('--data-loss-details <text>', 'with --data-loss partial: what was lost')
    .option('--users-affected <n>', 'how many users were affected, if known', (v) => (/^\d+$/.test(v) ? Number(v) : v))
    .option('--went-well <text>', 'a lesson: what went well (repeat)', collect, [])
    .option('--went-wrong <text>', 'a lesson: what went wrong (repeat)', collect, [])
    .option('--got-lucky <text>', 'a lesson: where we got lucky (repeat)', collect, [])
    .option('--action-item <text>', 'an action item for the review (repeat)', collect, [])
    .addHelpText('after', example('resolve incident-3f9c… --by alice@example.com --summary "Clerk fixed it upstream; sign-ins normal for 30 minutes" --detection monitoring_alert --data-loss none'))
    .action(async (workflowId: string, opts: Record<string, unknown>) => {
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
      const many = (k: string) => ((opts[k] as string[]).length ? (opts[k] as string[]) : undefined);
      const lessons = defined({ wentWell: many('wentWell'), wentWrong: many('wentWrong'), gotLucky: many('gotLucky') });
      const req = parseOrThrow(
        resolveRequestSchema,
        defined({
          resolvedBy: opts.by,
          summary: opts.summary,
          rootCause: opts.rootCause,
          trigger: opts.trigger,
          detection: opts.detection,
          dataLoss: opts.dataLoss,
          dataLossDetails: opts.dataLossDetails,
          usersAffected: opts.usersAffected,
          lessons: Object.keys(lessons).length ? lessons : undefined,
          actionItems: many('actionItem'),
        }),
        { resolvedBy: '--by', 'lessons.wentWell': '--went-well', 'lessons.wentWrong': '--went-wrong', 'lessons.gotLucky': '--got-lucky', actionItems: '--action-item' },
      );
      await connect(async (client) => {
        const handle = await existingWorkflow(client, id, INCIDENT);
        const answer = await sendUpdate((updateId) => handle.executeUpdate(resolveIncident, { args: [req], updateId }));
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
    .addHelpText('after', example('request incident-3f9c… --step targeted_revocation --requester alice@example.com --user user_2abc --reason "stuck sessions"'))
    .action(async (workflowId: string, opts: Record<string, unknown>) => {
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
      const users = opts.user as string[];
      const req = parseOrThrow(
        stepRequestSchema,
        defined({ step: opts.step, requester: opts.requester, reason: opts.reason, userIds: users.length ? users : undefined }),
        { userIds: '--user' },
      );
      await connect(async (client) => {
        const handle = await existingWorkflow(client, id, INCIDENT);
        const result = await sendUpdate((updateId) => handle.executeUpdate(requestStep, { args: [req], updateId }));
        console.log(result.message);
      });
    });

  program
    .command('review')
    .description('the post-incident review, from the event history and the state: Markdown (or --json), printed or written to --out')
    .argument('<workflowId>')
    .option('--out <file>', 'write it to this file instead of printing it')
    .option('--json', 'the review as JSON')
    .addHelpText('after', example('review incident-3f9c…', 'review incident-3f9c… --out review.md', 'review incident-3f9c… --json'))
    .action(async (workflowId: string, opts: { out?: string; json?: boolean }) => {
      const { workflowId: id } = parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' });
      await connect(async (client, env) => printReview(await fetchReview(await existingWorkflow(client, id, INCIDENT), env.APPROVER_IDENTITIES), opts));
    });

  return program;
}

/** The command as `npm run incident` runs it; `argv` as `process.argv`. */
export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}

if (require.main === module) runCli(() => main(process.argv));
