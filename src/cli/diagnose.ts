/**
 * `npm run diagnose`: the diagnostics of `middleware_failure` and `session_issues` from a
 * terminal, without an incident. Runs the same gathering and rule table as the workflow's
 * activity and prints every verdict with its evidence and fix, then the most likely cause.
 * A pasted `--token` is verified here against the instance's JWKS and never printed or stored.
 * Without `--sandbox` or CLERK_SECRET_KEY it looks at the sandbox of a running `npm start`.
 * Exit code: 0 every check ok (or skipped), 1 any warn or fail, 2 usage error.
 */
import { Command } from 'commander';
import { z } from 'zod';
import { runDiagnostics, type DiagnosticsDeps, type DiagnosticsReport } from '../activities/diagnostics';
import { createClerkGateway } from '../activities/clerk';
import { diagnosticsConfig, loadEnv, type Env } from '../config';
import { DIAGNOSTIC_KINDS, formatChecks } from '../diagnostics/rules';
import { clerkUserIdSchema, durationSchema, formatDuration } from '../domain';
import { findRunningStart } from '../runtime-file';
import { CliArgumentError, runCli } from './common';
import { terminalLines } from '../render-safe';

const optionsSchema = z.strictObject({
  sandbox: z.url().optional(),
  user: z.array(clerkUserIdSchema).max(100).default([]),
  token: z.string().min(1).optional(),
  kind: z.enum(DIAGNOSTIC_KINDS).optional(),
  probeTimeout: durationSchema(100, 60_000).default(5000),
  json: z.boolean().default(false),
});
type Options = z.output<typeof optionsSchema>;

function flagIssues(error: z.ZodError): string {
  return error.issues.map((i) => `--${String(i.path[0] ?? '?')}${i.path.length > 1 ? `[${String(i.path[1])}]` : ''}: ${i.message}`).join('; ');
}

/** Sandbox mode: a key of its own (the sandbox never hands out existing secrets), and the instance's publishable key. */
async function sandboxAccess(url: string, timeoutMs: number): Promise<{ secretKey: string; publishableKey: string }> {
  try {
    const res = await fetch(new URL('/__sandbox/keys', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ label: 'npm run diagnose' }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const key = z.object({ secretKey: z.string() }).safeParse(await res.json().catch(() => null));
    const overview = await fetch(new URL('/__sandbox', url), { signal: AbortSignal.timeout(timeoutMs) });
    const pk = z.object({ publishableKey: z.string() }).safeParse(await overview.json().catch(() => null));
    if (!key.success || !pk.success) throw new Error(`${url} is not a Clerk sandbox (POST /__sandbox/keys answered ${res.status})`);
    return { secretKey: key.data.secretKey, publishableKey: pk.data.publishableKey };
  } catch (err) {
    if (err instanceof Error && err.message.includes('is not a Clerk sandbox')) throw err;
    const cause = (err as { cause?: unknown }).cause;
    throw new Error(`${url} does not answer (${cause instanceof Error ? cause.message : String(err)})`);
  }
}

/** `--sandbox`, or (with no CLERK_SECRET_KEY) the sandbox of a running `npm start`. */
function sandboxToUse(flag: string | undefined, env: Env, log: (line: string) => void): string | undefined {
  if (flag) return flag;
  if (env.CLERK_SECRET_KEY) return undefined;
  const running = findRunningStart();
  if (running.kind !== 'found') return undefined;
  const { pid, mode, sandboxUrl } = running.info;
  if (mode !== 'sandbox' || !sandboxUrl) return undefined;
  log(`using the sandbox of the running npm start at ${sandboxUrl} (pid ${pid})`);
  return sandboxUrl;
}

/** The diagnostics' dependencies from the environment, or from the sandbox in sandbox mode. */
async function depsFor(opts: Options, env: Env, log: (line: string) => void): Promise<DiagnosticsDeps> {
  const base = sandboxToUse(opts.sandbox, env, log);
  const access = base
    ? await sandboxAccess(base, opts.probeTimeout).catch((err: Error) => {
        throw opts.sandbox ? new CliArgumentError(`--sandbox: ${err.message}`) : err;
      })
    : undefined;
  const secretKey = access?.secretKey ?? env.CLERK_SECRET_KEY;
  const apiUrl = base ?? env.CLERK_API_URL;
  if (!secretKey) log('no CLERK_SECRET_KEY and no sandbox: the checks that read Clerk are skipped');
  return {
    ...(secretKey ? { clerk: createClerkGateway({ secretKey, ...(apiUrl ? { apiUrl } : {}), retry: { maxUnavailableAttempts: 1 } }) } : {}),
    ...((env.APP_HEALTH_URL ?? (base && `${base}/api/clerk-health`)) ? { appHealthUrl: env.APP_HEALTH_URL ?? `${base}/api/clerk-health` } : {}),
    appRoutes: env.APP_ROUTES.length ? env.APP_ROUTES : base ? [`${base}/app/dashboard`, `${base}/app/profile`] : [],
    ...diagnosticsConfig(env, base ? { url: base, ...(access?.publishableKey ? { publishableKey: access.publishableKey } : {}) } : undefined),
    ...(apiUrl ? { clerkApiUrl: apiUrl } : {}),
  };
}

export function formatReport(report: DiagnosticsReport): string {
  return terminalLines([
    `Clerk diagnostics (${report.kind}) at ${report.at} (timeout ${formatDuration(report.timeoutMs)} per check)`,
    ...formatChecks(report.checks).map((l) => `  ${l}`),
    `summary: ${report.summary.text}`,
  ]);
}

/** 0 when every check is ok or skipped; 1 when any warns or fails. */
export function exitCodeOf(report: DiagnosticsReport): 0 | 1 {
  return report.checks.some((c) => c.verdict === 'warn' || c.verdict === 'fail') ? 1 : 0;
}

export async function diagnose(rawOptions: Record<string, unknown>, log: (line: string) => void = (l) => console.error(l)): Promise<DiagnosticsReport> {
  const parsed = optionsSchema.safeParse(rawOptions);
  if (!parsed.success) throw new CliArgumentError(flagIssues(parsed.error));
  const opts = parsed.data;
  const env = loadEnv();
  const deps = await depsFor(opts, env, log);
  const kind = opts.kind ?? (opts.user.length ? 'session_issues' : 'middleware_failure');
  return runDiagnostics(deps, { kind, userIds: opts.user, timeoutMs: opts.probeTimeout }, opts.token ? { token: opts.token } : {});
}

export const EXIT_CODES_HELP = `
Exit code:
  0  every check ok (or skipped for want of input)
  1  a check warns or fails (the summary names the most likely cause)
  2  usage error (a bad flag or flag value)`;

export function buildDiagnoseProgram(): Command {
  const collect = (v: string, prev: string[]) => [...prev, v];
  return new Command('diagnose')
    .description('check clock skew, keys, domains, authorized parties, session lifetimes, middleware and SDK, as the incident playbooks do')
    .option('--sandbox <url>', 'diagnose a running Clerk sandbox (e.g. http://127.0.0.1:8234); without it and without CLERK_SECRET_KEY, the sandbox of a running `npm start`')
    .option('--user <id>', 'an affected user whose sessions to look at (repeat; up to 100)', collect, [])
    .option('--token <jwt>', 'a session token to verify against the instance and check its azp (never printed nor stored)')
    .option('--kind <kind>', `${DIAGNOSTIC_KINDS.join(' | ')} (default: session_issues with --user, else middleware_failure)`)
    .option('--probe-timeout <duration>', 'timeout of each check, e.g. "5s"')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .action(async (opts: Record<string, unknown>) => {
      const report = await diagnose({ ...opts, json: opts.json === true });
      console.log(opts.json ? JSON.stringify(report, null, 2) : formatReport(report));
      process.exitCode = exitCodeOf(report);
    });
}

if (require.main === module) {
  runCli(async () => {
    await buildDiagnoseProgram().parseAsync(process.argv);
  });
}
