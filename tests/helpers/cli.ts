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
  return spawn(join(ROOT, 'node_modules', '.bin', 'tsx'), [script, ...args], { cwd: ROOT, env, stdio: 'pipe' });
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
