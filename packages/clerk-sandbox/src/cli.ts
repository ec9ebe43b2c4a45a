/**
 * `npm run sandbox -- [flags]`: runs the Clerk sandbox until SIGINT/SIGTERM. Prints one JSON
 * line on stdout when ready (`{"url":…,"secretKey":…,"webhookSigningSecret":…}`) for a parent
 * process to parse; everything for humans goes to stderr. Exit codes (docs/cli.md) for its usage
 * and start-up errors: 2 for a bad flag, 1 when it cannot start (e.g. the port is taken).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { startSandbox } from './index';
import { SandboxInputError, type FaultConfig, type RateLimitSetting, type SandboxOptions } from './schemas';

/** A flag's value the sandbox refused; the message names the flag. Exit code 2. */
class CliArgumentError extends Error {
  override readonly name = 'CliArgumentError';
}

/**
 * Runs `main` with the project's exit-code convention (docs/cli.md): 2 for a usage error (commander
 * prints its own, help and --version are 0), 1 for any other, printed as one line `error: <message>`.
 */
function runCli(main: () => Promise<void>): void {
  // A reader that stops early (`| head`) closes stdout: keep serving and drop the output, never crash on EPIPE.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
  main().catch((err: unknown) => {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = err instanceof CliArgumentError ? 2 : 1;
  });
}

function int(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number`);
    return Number(value);
  };
}

function fraction(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('must be a number between 0 and 1');
  return n;
}

function rateLimit(value: string): RateLimitSetting {
  if (value === 'production' || value === 'development' || value === 'off') return value;
  const m = /^(\d+)\/(\d+)$/.exec(value);
  if (!m) throw new InvalidArgumentError('use production, development, off or REQUESTS/WINDOW_MS (e.g. 50/1000)');
  return { requests: Number(m[1]), windowMs: Number(m[2]) };
}

function errorRate(value: string, previous: Record<string, number> = {}): Record<string, number> {
  const m = /^(500|502|503)=([0-9.]+)$/.exec(value);
  if (!m?.[1] || !m[2]) throw new InvalidArgumentError('use STATUS=RATE with STATUS 500, 502 or 503 (e.g. 503=0.2)');
  return { ...previous, [m[1]]: fraction(m[2]) };
}

function json(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('must be valid JSON');
  }
}

const program = new Command()
  .exitOverride()
  .name('npm run sandbox --')
  .description(
    'Clerk SANDBOX: a loopback server that behaves like the parts of the Clerk Backend API, status page and webhooks the runbook touches. NOT real Clerk.\n' +
      'Prints one JSON line on stdout when ready: {"url","secretKey","webhookSigningSecret","publishableKey","port","adminUrl"}. Admin API under <url>/__sandbox (see README).',
  )
  .addOption(new Option('-p, --port <port>', 'port to listen on (0 = a free port)').argParser(int('port')).default(0))
  .addOption(new Option('--host <host>', 'interface to bind').default('127.0.0.1'))
  .addOption(new Option('--seed <seed>', 'seed of the generated users and sessions').default('clerk-sandbox'))
  .addOption(new Option('-u, --users <count>', 'number of users to generate').argParser(int('users')).default(100))
  .addOption(
    new Option('--rate-limit <mode>', 'production (1000/10s), development (100/10s), off, or REQUESTS/WINDOW_MS')
      .argParser(rateLimit)
      .default('production'),
  )
  .addOption(new Option('--secret-key <key>', 'an active secret key (repeat for several); default: one generated').argParser((v: string, prev: string[] = []) => [...prev, v]))
  .addOption(new Option('--webhook-signing-secret <whsec>', 'webhook signing secret (whsec_…); default: generated'))
  .addOption(new Option('--webhook-url <url>', 'endpoint that receives Svix-signed webhook deliveries'))
  .addOption(new Option('--drop-webhooks', 'record webhook events but never deliver them').default(false))
  .addOption(new Option('--latency <ms>', 'fixed latency added to every Clerk API request').argParser(int('latency')))
  .addOption(new Option('--jitter <ms>', 'random extra latency, 0..ms').argParser(int('jitter')))
  .addOption(new Option('--error-rate <status=rate>', 'answer this fraction with 500/502/503 (repeatable), e.g. 503=0.2').argParser(errorRate))
  .addOption(new Option('--hang-rate <rate>', 'fraction of Clerk API requests never answered').argParser(fraction))
  .addOption(
    new Option('--faults <json>', 'full fault configuration as JSON, including rejectSessions (replaces --latency/--jitter/--error-rate/--hang-rate)').argParser(json),
  )
  .addOption(new Option('--outage', 'start with the outage switch on').default(false))
  .addOption(new Option('--revoke-inactive <mode>', 'revoking a session that is not active: error (400) or ok (200)').choices(['error', 'ok']).default('error'))
  .addOption(new Option('--audit-capacity <n>', 'audit entries kept (counters are never truncated)').argParser(int('audit-capacity')).default(200_000))
  .addOption(new Option('--max-hang-ms <ms>', 'longest a hang holds a request before dropping the connection').argParser(int('max-hang-ms')).default(300_000))
  .addHelpText(
    'after',
    '\nExamples:\n  npm run sandbox -- --users 100000 --rate-limit development\n  npm run sandbox -- --error-rate 503=0.1 --latency 50 --jitter 100\n  npm run sandbox -- --faults \'{"routes":{"POST /v1/sessions/{session_id}/revoke":{"hangRate":0.05}}}\'' +
      '\n  npm run sandbox -- --faults \'{"rejectSessions":{"sessionIds":["sess_…"],"status":403,"code":"forbidden"}}\'',
  );

interface CliFlags {
  port: number;
  host: string;
  seed: string;
  users: number;
  rateLimit: RateLimitSetting;
  secretKey?: string[];
  webhookSigningSecret?: string;
  webhookUrl?: string;
  dropWebhooks: boolean;
  latency?: number;
  jitter?: number;
  errorRate?: Record<string, number>;
  hangRate?: number;
  faults?: unknown;
  outage: boolean;
  revokeInactive: 'error' | 'ok';
  auditCapacity: number;
  maxHangMs: number;
}

/** The flag behind a field of the sandbox options, for refusals (`secretKeys.0` → `--secret-key`). */
function flagOf(field: string, flags: CliFlags): string {
  const [head = field, second] = field.split('.');
  if (head === 'faults') {
    if (flags.faults !== undefined) return `--faults (${field.slice('faults.'.length) || 'faults'})`;
    const byFault: Record<string, string> = { latency: '--latency/--jitter', errorRates: '--error-rate', hangRate: '--hang-rate' };
    return (second && byFault[second]) ?? '--faults';
  }
  const byOption: Record<string, string> = { secretKeys: '--secret-key', revokeInactiveSession: '--revoke-inactive' };
  return byOption[head] ?? `--${head.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

async function main(): Promise<void> {
  program.parse();
  const flags = program.opts<CliFlags>();
  const faults: FaultConfig | unknown =
    flags.faults ?? {
      ...(flags.latency !== undefined || flags.jitter !== undefined ? { latency: { fixedMs: flags.latency ?? 0, jitterMs: flags.jitter ?? 0 } } : {}),
      ...(flags.errorRate ? { errorRates: flags.errorRate } : {}),
      ...(flags.hangRate !== undefined ? { hangRate: flags.hangRate } : {}),
    };
  const options = {
    port: flags.port,
    host: flags.host,
    seed: /^-?\d+$/.test(flags.seed) ? Number(flags.seed) : flags.seed,
    users: flags.users,
    rateLimit: flags.rateLimit,
    secretKeys: flags.secretKey,
    webhookSigningSecret: flags.webhookSigningSecret,
    webhookUrl: flags.webhookUrl,
    dropWebhooks: flags.dropWebhooks,
    faults,
    revokeInactiveSession: flags.revokeInactive,
    auditCapacity: flags.auditCapacity,
    maxHangMs: flags.maxHangMs,
  } as SandboxOptions;
  const t0 = performance.now();
  let sandbox;
  try {
    sandbox = await startSandbox(options);
  } catch (err) {
    if (err instanceof SandboxInputError) throw new CliArgumentError(`${flagOf(err.field, flags)}: ${err.message}`);
    const code = (err as { code?: unknown }).code;
    if (code === 'EADDRINUSE') throw new Error(`--port ${flags.port}: already in use on ${flags.host} (another sandbox, or npm start?)`);
    throw err;
  }
  if (flags.outage) sandbox.admin.setOutage({ active: true });
  const seeded = sandbox.admin.lastSeed;
  process.stderr.write(
    [
      '',
      '  *** CLERK SANDBOX — not real Clerk ***',
      `  Backend API:   ${sandbox.url}/v1   (createClerkClient({ apiUrl: '${sandbox.url}', secretKey }))`,
      `  Status page:   ${sandbox.url}/api/v2/summary.json`,
      `  Example app:   ${sandbox.url}/api/clerk-health`,
      `  Admin API:     ${sandbox.url}/__sandbox`,
      `  Data:          ${seeded.users} users, ${seeded.sessions} sessions (${seeded.activeSessions} active), seed ${JSON.stringify(seeded.seed)}, generated in ${seeded.ms} ms`,
      `  Rate limit:    ${JSON.stringify(sandbox.admin.getRateLimit())}`,
      `  Ready in ${Math.round(performance.now() - t0)} ms. Ctrl-C to stop.`,
      '',
    ].join('\n') + '\n',
  );
  process.stdout.write(
    `${JSON.stringify({
      sandbox: true,
      url: sandbox.url,
      port: sandbox.port,
      secretKey: sandbox.secretKey,
      webhookSigningSecret: sandbox.webhookSigningSecret,
      publishableKey: sandbox.publishableKey,
      adminUrl: `${sandbox.url}/__sandbox`,
    })}\n`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`clerk-sandbox: ${signal}, stopping\n`);
    sandbox
      .close()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        process.stderr.write(`clerk-sandbox: error while stopping: ${String(err)}\n`);
        process.exit(1);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

runCli(main);
