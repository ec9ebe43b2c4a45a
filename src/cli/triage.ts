/**
 * `npm run triage`: the runbook's triage from a terminal. Runs the same probes as the workflow's
 * triage activity (in parallel, each with its own timeout) and prints one line per probe and the
 * classification of the same rule table. Nothing is started, nothing changes (except that
 * `--sandbox` adds a labelled key to the sandbox to call its Backend API with).
 */
import { Command } from 'commander';
import { z } from 'zod';
import { createClerkGateway } from '../activities/clerk';
import { probeBackendApi, runProbes, type ProbeTargets } from '../activities/probes';
import { CLERK_STATUS_PAGE, loadEnv } from '../config';
import { durationSchema, formatDuration, incidentCategorySchema } from '../domain';
import { classify, formatProbeReport, reconcile, type ProbeReport, type TriageVerdict } from '../triage/rules';
import { CliArgumentError } from './common';
import { describeFlagIssues } from './incident';

const optionsSchema = z.strictObject({
  timeout: durationSchema(100, 60_000).default(5000),
  statusPage: z.url().optional(),
  health: z.url().optional(),
  route: z.array(z.url()).default([]),
  category: incidentCategorySchema.optional(),
  sandbox: z.url().optional(),
  json: z.boolean().default(false),
});

export function formatTriage(report: ProbeReport, verdict: TriageVerdict): string {
  const c = verdict.classification;
  return [
    `Clerk incident triage at ${report.at} (timeout ${formatDuration(report.timeoutMs)} per probe)`,
    ...formatProbeReport(report).map((l) => `  ${l}`),
    `classification: ${c.category ?? 'none'} (severity ${c.severity}), rule ${c.rule}: ${c.reason}`,
    `verdict: ${verdict.category ?? 'no category'} (severity ${verdict.severity}, ${verdict.agreement}): ${verdict.note}`,
  ].join('\n');
}

/** Sandbox mode: a key of its own (the sandbox never hands out existing secrets). */
async function sandboxKey(url: string, timeoutMs: number): Promise<string> {
  const res = await fetch(new URL('/__sandbox/keys', url), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ label: 'npm run triage' }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = z.object({ secretKey: z.string() }).safeParse(await res.json().catch(() => null));
  if (!res.ok || !body.success) throw new Error(`--sandbox: ${url} is not a Clerk sandbox (POST /__sandbox/keys answered ${res.status})`);
  return body.data.secretKey;
}

export async function triage(rawOptions: Record<string, unknown>): Promise<{ report: ProbeReport; verdict: TriageVerdict }> {
  const parsed = optionsSchema.safeParse(rawOptions);
  if (!parsed.success) throw new CliArgumentError(describeFlagIssues(parsed.error));
  const opts = parsed.data;
  const env = loadEnv();
  const base = opts.sandbox;
  const secretKey = base ? await sandboxKey(base, opts.timeout) : env.CLERK_SECRET_KEY;
  const apiUrl = base ?? env.CLERK_API_URL;
  const clerk = secretKey ? createClerkGateway({ secretKey, ...(apiUrl ? { apiUrl } : {}) }) : undefined;
  const targets: ProbeTargets = {
    statusPageUrl: opts.statusPage ?? base ?? env.CLERK_STATUS_PAGE_URL ?? CLERK_STATUS_PAGE,
    appHealthUrl: opts.health ?? env.APP_HEALTH_URL ?? (base ? `${base}/api/clerk-health` : undefined),
    appRoutes: opts.route.length ? opts.route : env.APP_ROUTES.length ? env.APP_ROUTES : base ? [`${base}/app/dashboard`, `${base}/app/profile`] : [],
    ...(clerk ? { backendApi: (timeoutMs: number) => probeBackendApi(clerk, timeoutMs) } : {}),
  };
  const report = await runProbes(targets, opts.timeout);
  return { report, verdict: reconcile(opts.category, classify(report)) };
}

export function buildTriageProgram(): Command {
  const collect = (v: string, prev: string[]) => [...prev, v];
  return new Command('triage')
    .description('probe Clerk and the app like the incident workflow does, and classify')
    .option('--timeout <duration>', 'timeout of each probe, e.g. "5s"')
    .option('--status-page <url>', 'Statuspage v2 base URL (default CLERK_STATUS_PAGE_URL or https://status.clerk.com)')
    .option('--health <url>', "the app's health route (default APP_HEALTH_URL)")
    .option('--route <url>', 'an app page to probe (repeat; default APP_ROUTES)', collect, [])
    .option('--category <category>', 'the category the reporter named, to confirm or contradict')
    .option('--sandbox <url>', 'probe a running Clerk sandbox (e.g. http://127.0.0.1:8234) instead of real Clerk')
    .option('--json', 'print the probe report and the verdict as JSON')
    .showHelpAfterError()
    .action(async (opts: Record<string, unknown>) => {
      const { report, verdict } = await triage({ ...opts, json: opts.json === true });
      console.log(opts.json ? JSON.stringify({ report, verdict }, null, 2) : formatTriage(report, verdict));
    });
}

if (require.main === module) {
  buildTriageProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(2);
    });
}
