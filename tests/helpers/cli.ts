/** Run one of the project's CLIs as a user does: `tsx <script> <args>` in a child process. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The first line on stderr: where every CLI puts its one-line error. */
  firstError: string;
}

export function spawnCli(script: string, args: string[], env: NodeJS.ProcessEnv): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, tsxArgs(script, args), { cwd: ROOT, env, stdio: 'pipe', detached: true });
}

/**
 * A TypeScript entry point run by node with tsx as its loader, in its own process group. Not the
 * `tsx` command: it relays signals to a child node process and SIGKILLs it (exit 130) when the
 * child has not acknowledged a SIGINT within 30 ms, which a loaded machine misses.
 */
export function tsxArgs(script: string, args: string[] = []): string[] {
  return ['--import', 'tsx', script, ...args];
}

/** Ctrl-C as a terminal sends it: SIGINT to the command's whole process group (spawned `detached`). */
export function ctrlC(child: { pid?: number | undefined }): void {
  if (child.pid === undefined) throw new Error('ctrlC: the process has no pid (it did not start)');
  process.kill(-child.pid, 'SIGINT');
}

/** The command to completion, with its output and exit code. */
export function runCli(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  const child = spawnCli(script, args, env);
  child.stdin.end();
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr, firstError: stderr.split('\n')[0] ?? '' }));
  });
}
