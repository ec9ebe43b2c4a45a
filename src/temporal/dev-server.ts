/**
 * The local Temporal dev server (`temporal server start-dev`) with its state in a SQLite file,
 * our search attributes registered and the UI on its own port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { Connection, type ConnectionOptions } from '@temporalio/client';
import { IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey, SEARCH_ATTRIBUTES } from '../shared';

/** A loopback port that was free a moment ago (for a dev server, its UI, or any server started on loopback). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export class DevServerError extends Error {
  override readonly name = 'DevServerError';
}

/** True when a Temporal frontend answers at `address` (or with these connection options) within `timeoutMs`. */
export async function serverAnswers(address: string | ConnectionOptions, timeoutMs = 1500): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ ...(typeof address === 'string' ? { address } : address), connectTimeout: timeoutMs });
    await connection.workflowService.getSystemInfo({}, );
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close();
  }
}

export interface DevServerOptions {
  cliPath: string;
  dbFile: string;
  host?: string;
  port?: number;
  uiPort?: number;
  /** Server output goes here (it is chatty); the terminal stays for our own messages. */
  logFile: string;
  namespace?: string;
  /** The codec server the UI calls to show encrypted payloads (`--ui-codec-endpoint`). */
  uiCodecEndpoint?: string;
}

export interface RunningDevServer {
  address: string;
  uiUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** The arguments of `temporal server start-dev` for `opts`. */
export function devServerArgs(opts: Omit<DevServerOptions, 'cliPath' | 'logFile'>): string[] {
  return [
    'server',
    'start-dev',
    '--db-filename',
    opts.dbFile,
    '--ip',
    opts.host ?? '127.0.0.1',
    '--port',
    String(opts.port ?? 7233),
    '--ui-port',
    String(opts.uiPort ?? 8233),
    '--namespace',
    opts.namespace ?? 'default',
    '--log-level',
    'warn',
    ...SEARCH_ATTRIBUTES.flatMap((name) => ['--search-attribute', `${name}=Keyword`]),
    ...(opts.uiCodecEndpoint ? ['--ui-codec-endpoint', opts.uiCodecEndpoint] : []),
  ];
}

export async function startDevServer(opts: DevServerOptions): Promise<RunningDevServer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 7233;
  const uiPort = opts.uiPort ?? 8233;
  const address = `${host}:${port}`;
  mkdirSync(dirname(opts.dbFile), { recursive: true });
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const args = devServerArgs(opts);
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  const child = spawn(opts.cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    }),
  );

  const deadline = Date.now() + 30_000;
  while (!(await serverAnswers(address, 500))) {
    if (exited) {
      throw new DevServerError(
        `temporal server start-dev exited (code ${exited.code}, signal ${exited.signal}) before answering; see ${opts.logFile}`,
      );
    }
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new DevServerError(`temporal server start-dev did not answer at ${address} within 30 s; see ${opts.logFile}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  return {
    address,
    uiUrl: `http://${host === '0.0.0.0' ? 'localhost' : host}:${uiPort}`,
    process: child,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const killTimer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exit;
        clearTimeout(killTimer);
      }
      log.end();
    },
  };
}

/**
 * Last resort for a user with internet access and none of our ways to obtain the CLI: let the
 * Temporal SDK download its own dev server (`@temporalio/testing`, installed by `npm install`).
 */
export async function startDevServerViaSdkDownload(
  opts: Omit<DevServerOptions, 'cliPath' | 'logFile'>,
): Promise<Omit<RunningDevServer, 'process'>> {
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const host = opts.host ?? '127.0.0.1';
  const uiPort = opts.uiPort ?? 8233;
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'cached-download', downloadDir: dirname(opts.dbFile) },
      dbFilename: opts.dbFile,
      ip: host,
      port: opts.port ?? 7233,
      uiPort,
      namespace: opts.namespace ?? 'default',
      searchAttributes: [IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey],
      ...(opts.uiCodecEndpoint ? { extraArgs: ['--ui-codec-endpoint', opts.uiCodecEndpoint] } : {}),
    },
  });
  return { address: env.address, uiUrl: `http://${host}:${uiPort}`, stop: () => env.teardown() };
}
