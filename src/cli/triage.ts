/**
 * `npm run triage`: the runbook's triage from a terminal. Runs the same probes as the workflow's
 * triage activity (in parallel, each with its own timeout) and prints one line per probe and the
 * classification of the same rule table. Nothing is started, nothing changes (except that in
 * sandbox mode it adds a labelled key to the sandbox to call its Backend API with). Without
 * `--sandbox` or CLERK_SECRET_KEY it probes the sandbox of a running `npm start`, if any.
 * Exit code: 0 all clear, 1 something is wrong or inconclusive, 2 usage error (docs/cli.md).
 */
import { Command } from 'commander';
import { z } from 'zod';
import { createClerkGateway } from '../activities/clerk';
import { probeBackendApi, runProbes, type ProbeTargets } from '../activities/probes';
import { CLERK_STATUS_PAGE, loadEnv, type Env } from '../config';
import { durationSchema, formatDuration, incidentCategorySchema } from '../domain';
import { findRunningStart } from '../runtime-file';
import { classify, formatProbeReport, reconcile, type ProbeReport, type TriageVerdict } from '../triage/rules';
import { CliArgumentError, describeFlagIssues, runCli } from './common';
import { terminalLines } from '../render-safe';

const optionsSchema = z.strictObject({
  probeTimeout: durationSchema(100, 60_000).default(5000),
  statusPage: z.url().optional(),
  health: z.url().optional(),
  route: z.array(z.url()).default([]),
  category: incidentCategorySchema.optional(),
  sandbox: z.url().optional(),
  json: z.boolean().default(false),
});

export function formatTriage(report: ProbeReport, verdict: TriageVerdict): string {
  const c = verdict.classification;
  return terminalLines([
    `Clerk incident triage at ${report.at} (timeout ${formatDuration(report.timeoutMs)} per probe)`,
    ...formatProbeReport(report).map((l) => `  ${l}`),
    `classification: ${c.category ?? 'none'} (severity ${c.severity}), rule ${c.rule}: ${c.reason}`,
    `verdict: ${verdict.category ?? 'no category'} (severity ${verdict.severity}, ${verdict.agreement}): ${verdict.note}`,
  ]);
}

/** Sandbox mode: a key of its own (the sandbox never hands out existing secrets). */
async function sandboxKey(url: string, timeoutMs: number): Promise<string> {
  let res: Response;
  try {
    res = await fetch(new URL('/__sandbox/keys', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ label: 'npm run triage' }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    throw new Error(`${url} does not answer (${cause instanceof Error ? cause.message : String(err)})`);
  }
  const body = z.object({ secretKey: z.string() }).safeParse(await res.json().catch(() => null));
  if (!res.ok || !body.success) throw new Error(`${url} is not a Clerk sandbox (POST /__sandbox/keys answered ${res.status})`);
  return body.data.secretKey;
}

/**
 * The sandbox to probe: `--sandbox`, or else (with no CLERK_SECRET_KEY) the one of a running
 * `npm start`, found through its runtime file. Says which on `log` (stderr: --json keeps stdout).
 */
function sandboxToProbe(flag: string | undefined, env: Env, log: (line: string) => void): string | undefined {
  if (flag) return flag;
  if (env.CLERK_SECRET_KEY) return undefined;
  const running = findRunningStart();
  if (running.kind === 'missing') return undefined;
  if (running.kind !== 'found') {
    log(`not using a running npm start: ${running.reason}`);
    return undefined;
  }
  const { pid, mode, sandboxUrl } = running.info;
  if (mode !== 'sandbox' || !sandboxUrl) {
    log(`the running npm start (pid ${pid}) uses real Clerk: set CLERK_SECRET_KEY here to probe its Backend API`);
    return undefined;
  }
  log(`using the sandbox of the running npm start at ${sandboxUrl} (pid ${pid})`);
  return sandboxUrl;
}

export async function triage(
  rawOptions: Record<string, unknown>,
  log: (line: string) => void = (line) => console.error(line),
): Promise<{ report: ProbeReport; verdict: TriageVerdict }> {
  const parsed = optionsSchema.safeParse(rawOptions);
  if (!parsed.success) throw new CliArgumentError(describeFlagIssues(parsed.error));
  const opts = parsed.data;
  const env = loadEnv();
  const base = sandboxToProbe(opts.sandbox, env, log);
  const secretKey = base
    ? await sandboxKey(base, opts.probeTimeout).catch((err: Error) => {
        // A --sandbox that is no sandbox is a bad flag; a vanished npm start is not.
        throw opts.sandbox ? new CliArgumentError(`--sandbox: ${err.message}`) : err;
      })
    : env.CLERK_SECRET_KEY;
  const apiUrl = base ?? env.CLERK_API_URL;
  const clerk = secretKey ? createClerkGateway({ secretKey, ...(apiUrl ? { apiUrl } : {}) }) : undefined;
  const targets: ProbeTargets = {
    statusPageUrl: opts.statusPage ?? base ?? env.CLERK_STATUS_PAGE_URL ?? CLERK_STATUS_PAGE,
    appHealthUrl: opts.health ?? env.APP_HEALTH_URL ?? (base ? `${base}/api/clerk-health` : undefined),
    appRoutes: opts.route.length ? opts.route : env.APP_ROUTES.length ? env.APP_ROUTES : base ? [`${base}/app/dashboard`, `${base}/app/profile`] : [],
    ...(clerk ? { backendApi: (timeoutMs: number) => probeBackendApi(clerk, timeoutMs) } : {}),
  };
  const report = await runProbes(targets, opts.probeTimeout);
  return { report, verdict: reconcile(opts.category, classify(report)) };
}

export const EXIT_CODES_HELP = `
Exit code:
  0  all clear: every probe ran and passed, and no category was named
  1  something is wrong (the verdict names a category) or inconclusive (a probe was skipped or could not run)
  2  usage error (a bad flag or flag value)`;

/** 0 only for a verdict of all clear; a named category or an inconclusive triage is 1. */
export function exitCodeOf(verdict: TriageVerdict): 0 | 1 {
  return verdict.category === undefined && verdict.classification.rule === 'all_clear' ? 0 : 1;
}

/**
 * The command; its exit code (see EXIT_CODES_HELP) through runCli: a verdict that is not all clear
 * sets `process.exitCode = 1` (the command did its job, the answer is "not fine").
 */
export function buildTriageProgram(
  onVerdict: (verdict: TriageVerdict) => void = (verdict) => {
    process.exitCode = exitCodeOf(verdict);
  },
): Command {
  const collect = (v: string, prev: string[]) => [...prev, v];
  return new Command('triage')
    .exitOverride()
    .description('probe Clerk and the app like the incident workflow does, and classify (flags and exit codes: docs/cli.md)')
    .option('--probe-timeout <duration>', 'timeout of each probe, e.g. "5s" (default 5s)')
    .option('--status-page <url>', 'Statuspage v2 base URL (default CLERK_STATUS_PAGE_URL or https://status.clerk.com)')
    .option('--health <url>', "the app's health route (default APP_HEALTH_URL)")
    .option('--route <url>', 'an app page to probe (repeat; default APP_ROUTES)', collect, [])
    .option('--category <category>', 'the category the reporter named, to confirm or contradict')
    .option(
      '--sandbox <url>',
      'probe a running Clerk sandbox (e.g. http://127.0.0.1:8234) instead of real Clerk; without it and without CLERK_SECRET_KEY, the sandbox of a running `npm start`',
    )
    .option('--json', 'print the probe report and the verdict as JSON')
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError('(add --help for usage)')
    .action(async (opts: Record<string, unknown>) => {
      const { report, verdict } = await triage({ ...opts, json: opts.json === true });
      console.log(opts.json ? JSON.stringify({ report, verdict }, null, 2) : formatTriage(report, verdict));
      onVerdict(verdict);
    });
}

/** The command as `npm run triage` runs it; `argv` as `process.argv`. */
export async function main(argv: string[]): Promise<void> {
  await buildTriageProgram().parseAsync(argv);
}

if (require.main === module) runCli(() => main(process.argv));
