/**
 * `npm run incident -- <command>`: start and inspect incidents from a terminal. Every argument is
 * validated with the same zod schemas the workflow uses, so a bad flag is refused before anything
 * reaches Temporal.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { Command, InvalidArgumentError } from 'commander';
import { loadEnv } from '../config';
import { describeIssues, incidentInputSchema, INCIDENT_CATEGORIES } from '../domain';
import { getIncidentState, incidentWorkflow } from '../workflows';

/** Refusal of a CLI argument; the message names the flag. */
export class CliArgumentError extends Error {
  override readonly name = 'CliArgumentError';
}

async function withClient<T>(fn: (client: Client, env: ReturnType<typeof loadEnv>) => Promise<T>): Promise<T> {
  const env = loadEnv();
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  try {
    return await fn(new Client({ connection, namespace: env.TEMPORAL_NAMESPACE }), env);
  } finally {
    await connection.close();
  }
}

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

export function buildProgram(): Command {
  const program = new Command('incident').description('Start and follow Clerk incident workflows').showHelpAfterError();

  program
    .command('start')
    .description('start an incident workflow (the same input the UI takes)')
    .option('--category <category>', `one of ${INCIDENT_CATEGORIES.join(', ')} (omit to let triage decide)`)
    .option('--reporter <name>', 'who reports the incident')
    .option('--summary <text>', 'what is broken, in a sentence')
    .option('--approver <name>', 'allowed approver (repeat the flag for several)', collect, [])
    .option('--dry-run', 'plan and record, change nothing')
    .option('--input <json>', 'the whole input as one JSON object (instead of the flags)', parseJsonObject)
    .option('--id <workflowId>', 'workflow id (default: incident-<random>)')
    .option('--wait', 'wait for the incident to end and print its final state')
    .action(async (opts: Record<string, unknown>) => {
      const raw =
        opts.input ??
        Object.fromEntries(
          Object.entries({
            category: opts.category,
            reporter: opts.reporter,
            summary: opts.summary,
            approvers: (opts.approver as string[]).length ? opts.approver : undefined,
            dryRun: opts.dryRun === true ? true : undefined,
          }).filter(([, v]) => v !== undefined),
        );
      const parsed = incidentInputSchema.safeParse(raw);
      if (!parsed.success) throw new CliArgumentError(describeIssues(parsed.error, opts.input ? 'input' : 'flag'));
      await withClient(async (client, env) => {
        const workflowId = typeof opts.id === 'string' ? opts.id : `incident-${randomUUID()}`;
        const handle = await client.workflow.start(incidentWorkflow, {
          taskQueue: env.TEMPORAL_TASK_QUEUE,
          workflowId,
          args: [parsed.data],
          staticSummary: `Incident: ${parsed.data.summary}`,
        });
        console.log(`started ${handle.workflowId}`);
        console.log(`follow it: npm run incident -- show ${handle.workflowId}`);
        if (opts.wait) console.log(JSON.stringify(await handle.result(), null, 2));
      });
    });

  program
    .command('show')
    .description('print the state and timeline of an incident')
    .argument('<workflowId>')
    .action(async (workflowId: string) => {
      await withClient(async (client) => {
        const state = await client.workflow.getHandle(workflowId).query(getIncidentState);
        console.log(JSON.stringify(state, null, 2));
      });
    });

  return program;
}

if (require.main === module) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(2);
    });
}
