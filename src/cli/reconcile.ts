/**
 * `npm run reconcile -- <command>`: reconcile the app's user store with Clerk (reconcileUsersWorkflow).
 *
 *   npm run reconcile -- start --requester alice@example.com --reason "webhooks dropped" [--dry-run] [--created-from <time> [--created-to <time>] | --active-from <time> [--active-to <time>]] [--approval-above <n>] [--follow] [--id <workflowId>]
 *   npm run reconcile -- progress <workflowId> [--once]   # one line per poll until it completes (or the progress once, as JSON)
 *   npm run reconcile -- approve <workflowId> --approver bob@example.com [--reason …]
 *   npm run reconcile -- reject <workflowId> --approver bob@example.com [--reason …]
 *
 * Input and decisions are validated with the workflow's own schemas, so a bad flag is refused (and
 * named) before anything reaches Temporal. Exit codes (`runCli`): 0 succeeded, 1 refused or failed
 * (including a `partial` or `failed` outcome), 2 usage.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { Command } from 'commander';
import { CliArgumentError, describeFlagIssues, existingWorkflow, operatorIdentity, runCli, withClient } from './common';
import { followRun, say, startRun, type RunKind } from './runs';
import { terminalLine } from '../render-safe';
import { totalsLine, type ReconcileUsersResult } from '../reconcile';
import {
  decideReconcile,
  getReconcileProgress,
  reconcileDecisionSchema,
  reconcileUsersInputSchema,
  reconcileUsersWorkflow,
  type ReconcileUsersInput,
} from '../workflows/reconcile-users';

const WORKFLOW_TYPE = 'reconcileUsersWorkflow';
const POLL_MS = 1000;

interface StartFlags {
  requester: string;
  reason: string;
  dryRun?: boolean;
  createdFrom?: string;
  createdTo?: string;
  activeFrom?: string;
  activeTo?: string;
  approvalAbove?: string;
  incidentId?: string;
  id?: string;
  follow?: boolean;
}

const FLAG_OF: Record<string, string> = {
  requestedBy: '--requester',
  reason: '--reason',
  approvalAbove: '--approval-above',
  'scope.from': '--created-from/--active-from',
  'scope.to': '--created-to/--active-to',
  incidentId: '--incident-id',
};

export function inputFromFlags(f: StartFlags): ReconcileUsersInput {
  if (f.createdFrom && f.activeFrom) throw new CliArgumentError('--created-from, --active-from: choose one window');
  if ((f.createdTo && !f.createdFrom) || (f.activeTo && !f.activeFrom)) throw new CliArgumentError('--created-to/--active-to: only with its --…-from');
  const scope = f.createdFrom
    ? { type: 'createdBetween' as const, from: f.createdFrom, ...(f.createdTo ? { to: f.createdTo } : {}) }
    : f.activeFrom
      ? { type: 'activeBetween' as const, from: f.activeFrom, ...(f.activeTo ? { to: f.activeTo } : {}) }
      : { type: 'all' as const };
  let approvalAbove: number | null | undefined;
  if (f.approvalAbove !== undefined) approvalAbove = f.approvalAbove === 'never' ? null : Number(f.approvalAbove);
  const raw = {
    scope,
    requestedBy: f.requester,
    reason: f.reason,
    ...(f.dryRun ? { dryRun: true } : {}),
    ...(approvalAbove !== undefined ? { approvalAbove } : {}),
    ...(f.incidentId ? { incidentId: f.incidentId } : {}),
  };
  const parsed = reconcileUsersInputSchema.safeParse(raw);
  if (!parsed.success) throw new CliArgumentError(describeFlagIssues(parsed.error, FLAG_OF));
  return raw;
}

function resultLines(r: ReconcileUsersResult): string[] {
  return [
    `${r.outcome}: ${totalsLine(r.totals, r.dryRun)} (${r.delivery ?? 'no'} delivery, ${r.elapsedSeconds} s, ${r.batches} batch(es), ${r.runs} run(s))`,
    ...(r.planned ? [`plan: ${totalsLine(r.planned, true)}`] : []),
    ...(r.approval ? [`approval: ${r.approval.decision}${r.approval.by ? ` by ${r.approval.by}` : ''}`] : []),
    ...(r.samples.missing.length ? [`missing, e.g.: ${r.samples.missing.join(', ')}`] : []),
    ...(r.samples.stale.length ? [`stale, e.g.: ${r.samples.stale.map((s) => `${s.userId} (${s.fields.join(', ')})`).join(', ')}`] : []),
    ...(r.samples.deleted.length ? [`deleted in Clerk, e.g.: ${r.samples.deleted.join(', ')}`] : []),
    ...r.failures.slice(0, 20).map((f) => `refused: ${f.userId} ${f.type} ${f.svixId}: ${f.status ?? ''} ${f.answer}`),
    ...(r.svixPortalUrl ? [`Svix portal: ${r.svixPortalUrl}`] : []),
  ];
}

const RECONCILIATION: RunKind<typeof reconcileUsersWorkflow> = { workflow: reconcileUsersWorkflow, noun: 'reconciliation', command: 'npm run reconcile', resultLines };

/** One line per poll when it changed: the stage and its totals, and what it waits for. */
async function follow(client: Client, workflowId: string): Promise<void> {
  const handle = client.workflow.getHandle<typeof reconcileUsersWorkflow>(workflowId);
  let last = '';
  await followRun(handle, RECONCILIATION, {
    everyMs: POLL_MS,
    poll: async () => {
      const p = await handle.query(getReconcileProgress);
      const line = `${p.stage}: ${totalsLine(p.totals, p.dryRun || p.stage.startsWith('plan'))}${p.stage === 'approval' ? ` — waiting for: npm run reconcile -- approve ${workflowId} --approver <name>` : ''}${p.lastError ? ` — waiting: ${p.lastError.type}` : ''}`;
      if (line !== last) say(terminalLine(line));
      last = line;
    },
  });
}

export function buildProgram(): Command {
  const program = new Command('reconcile').exitOverride().description("Reconcile the app's user store with Clerk and replay missed webhooks (reconcileUsersWorkflow)");
  program
    .command('start')
    .description('start a reconciliation (prints its workflow id)')
    .requiredOption('--requester <name>', 'required: who asks for it (recorded in the timeline)')
    .requiredOption('--reason <text>', 'required: why (recorded in the timeline)')
    .option('--dry-run', 'count and sample the differences; change nothing')
    .option('--created-from <time>', 'only users created since this ISO time')
    .option('--created-to <time>', 'and before this ISO time')
    .option('--active-from <time>', 'only users active since this ISO time')
    .option('--active-to <time>', 'and before this ISO time')
    .option('--approval-above <n>', 'wait for an approval when more events than this would be delivered (default 1000; "never": no plan, no approval)')
    .option('--incident-id <id>', 'the incident this belongs to')
    .option('--id <workflowId>', 'workflow id (default: reconcile-<random>)')
    .option('--follow', 'print progress until it completes (exit 1 unless the outcome is succeeded)')
    .action(async (flags: StartFlags) => {
      const input = inputFromFlags(flags);
      await withClient(async (client, env) => {
        const workflowId = flags.id ?? `reconcile-${randomUUID()}`;
        await startRun(client, env, RECONCILIATION, { workflowId, args: [input], dryRun: input.dryRun === true });
        if (flags.follow) await follow(client, workflowId);
      });
    });
  program
    .command('progress')
    .description('print the progress until it completes (exit 1 unless the outcome is succeeded)')
    .argument('<workflowId>')
    .option('--once', 'print the progress once, as JSON, and exit 0')
    .action(async (workflowId: string, flags: { once?: boolean }) => {
      await withClient(async (client) => {
        const handle = await existingWorkflow(client, workflowId, WORKFLOW_TYPE);
        if (flags.once) {
          const p = await handle.query(getReconcileProgress);
          say(JSON.stringify(p, null, 2));
          return;
        }
        await follow(client, workflowId);
      });
    });
  for (const decision of ['approve', 'reject'] as const) {
    program
      .command(decision)
      .description(`${decision} a reconciliation waiting for approval (the approver may not be the requester)`)
      .argument('<workflowId>')
      .requiredOption('--approver <name>', 'required: who decides')
      .option('--reason <text>', 'why')
      .option('--identity <identity>', 'client identity recorded in history (default INCIDENT_OPERATOR or user@host)')
      .action(async (workflowId: string, flags: { approver: string; reason?: string; identity?: string }) => {
        const request = { decision, approver: flags.approver, ...(flags.reason ? { reason: flags.reason } : {}) };
        const parsed = reconcileDecisionSchema.safeParse(request);
        if (!parsed.success) throw new CliArgumentError(describeFlagIssues(parsed.error));
        await withClient(async (client) => {
          const handle = await existingWorkflow(client, workflowId, WORKFLOW_TYPE);
          try {
            const result = await handle.executeUpdate(decideReconcile, { args: [request] });
            say(terminalLine(`${result.decision} by ${result.by}`));
          } catch (err) {
            if (err instanceof WorkflowUpdateFailedError) throw new Error(`refused: ${err.cause?.message ?? err.message}`);
            throw err;
          }
        }, operatorIdentity(flags.identity));
      });
  }
  return program;
}


if (require.main === module) {
  runCli(async () => {
    await buildProgram().parseAsync(process.argv);
  });
}
