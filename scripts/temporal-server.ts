/**
 * The self-hosted Temporal Server that `npm run test:selfhosted` runs natively (docs/self-hosted.md):
 * Temporal Server 1.32.0 (the version the compose file's `temporalio/server` image pins) and its
 * `temporal-sql-tool`, built with `go install` from the Go module proxy, with the PostgreSQL schema
 * files of the same module version (what `temporalio/admin-tools` ships under /etc/temporal/schema).
 *
 * Kept in a per-user cache keyed by version, so only the first run pays for the build (about
 * 8 minutes and 2.6 GB on 2 cores); later runs find it in milliseconds:
 * `${TEMPORAL_SERVER_CACHE:-${XDG_CACHE_HOME:-~/.cache}/clerk-incident-runbook/temporal-server-1.32.0}`
 * holding `temporal-server`, `temporal-sql-tool` (stripped) and `schema/postgresql/v12/`.
 *
 * Run: `tsx scripts/temporal-server.ts` (prints the cache directory).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const TEMPORAL_SERVER_VERSION = '1.32.0';
const MODULE = 'go.temporal.io/server';
const TARGETS = { 'temporal-server': 'cmd/server', 'temporal-sql-tool': 'cmd/tools/sql' } as const;

export interface TemporalServerInstall {
  dir: string;
  server: string;
  sqlTool: string;
  /** `schema/postgresql/v12`, with `temporal/versioned` and `visibility/versioned` below it. */
  postgresSchema: string;
}

export class TemporalServerBuildError extends Error {
  override readonly name = 'TemporalServerBuildError';
}

export function temporalServerCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TEMPORAL_SERVER_CACHE) return env.TEMPORAL_SERVER_CACHE;
  const cacheHome = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cacheHome, 'clerk-incident-runbook', `temporal-server-${TEMPORAL_SERVER_VERSION}`);
}

function layout(dir: string): TemporalServerInstall {
  return {
    dir,
    server: join(dir, 'temporal-server'),
    sqlTool: join(dir, 'temporal-sql-tool'),
    postgresSchema: join(dir, 'schema', 'postgresql', 'v12'),
  };
}

function complete(install: TemporalServerInstall): boolean {
  return [install.server, install.sqlTool, join(install.postgresSchema, 'temporal', 'versioned'), join(install.postgresSchema, 'visibility', 'versioned')].every(
    (p) => existsSync(p),
  );
}

/** The cached install, built first when it is missing. `log` gets one line per stage. */
export function ensureTemporalServer(log: (line: string) => void = () => undefined, env: NodeJS.ProcessEnv = process.env): TemporalServerInstall {
  const dir = temporalServerCacheDir(env);
  const install = layout(dir);
  if (complete(install)) return install;

  const go = spawnSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8', env });
  if (go.status !== 0) throw new TemporalServerBuildError(`Temporal Server ${TEMPORAL_SERVER_VERSION} is not in ${dir} and Go is not available to build it (${go.error?.message ?? go.stderr.trim()})`);
  const modCache = go.stdout.trim();

  // Built into a sibling directory and renamed at the end: an interrupted build leaves no half cache.
  mkdirSync(join(dir, '..'), { recursive: true });
  const staging = mkdtempSync(`${dir}.building-`);
  chmodSync(staging, 0o755);
  try {
    const started = Date.now();
    log(`building Temporal Server ${TEMPORAL_SERVER_VERSION} and temporal-sql-tool with go install (first run only; about 8 min on 2 cores)…`);
    const targets = Object.values(TARGETS).map((t) => `${MODULE}/${t}@v${TEMPORAL_SERVER_VERSION}`);
    // nice: the build takes both cores for minutes; -s -w: stripped, about 150 MB instead of 210 MB.
    const args = ['install', '-trimpath', '-ldflags=-s -w', ...targets];
    const useNice = spawnSync('nice', ['true']).status === 0;
    const build = spawnSync(useNice ? 'nice' : 'go', useNice ? ['-n', '19', 'go', ...args] : args, {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...env, GOBIN: staging, CGO_ENABLED: '0' },
    });
    if (build.status !== 0) throw new TemporalServerBuildError(`go install failed (exit ${build.status ?? build.signal})`);
    for (const [name, target] of Object.entries(TARGETS)) renameSync(join(staging, target.split('/').pop()!), join(staging, name));
    const schema = join(modCache, `${MODULE}@v${TEMPORAL_SERVER_VERSION}`, 'schema', 'postgresql');
    if (!existsSync(schema)) throw new TemporalServerBuildError(`no PostgreSQL schema at ${schema}`);
    cpSync(schema, join(staging, 'schema', 'postgresql'), { recursive: true });
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
    const mb = (p: string) => Math.round(statSync(p).size / 1e6);
    log(`built in ${Math.round((Date.now() - started) / 1000)} s: temporal-server ${mb(install.server)} MB, temporal-sql-tool ${mb(install.sqlTool)} MB, in ${dir}`);
    return install;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

if (require.main === module) {
  try {
    const install = ensureTemporalServer((line) => console.log(line));
    console.log(`Temporal Server ${TEMPORAL_SERVER_VERSION}: ${install.dir}`);
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
