/**
 * The runtime file: what a running `npm start` brought up (its pid, the sandbox's URL, Temporal's
 * address), so `npm run triage` without flags can find the sandbox. Written by src/main.ts once
 * everything is up, removed on clean shutdown; a file whose pid is gone is stale and ignored.
 * `CIR_RUNTIME_FILE` overrides its place (default `.data/runtime.json`).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { PROJECT_ROOT } from './temporal/provision';

export const runtimeInfoSchema = z.strictObject({
  pid: z.number().int().positive(),
  mode: z.enum(['sandbox', 'clerk']),
  sandboxUrl: z.url().optional(),
  temporalAddress: z.string().min(1),
  uiUrl: z.url(),
  /** The roster the worker decides by (ROSTER_FILE, or the sample in sandbox mode): the CLI checks an incident's names against it before starting. */
  rosterFile: z.string().min(1).optional(),
  startedAt: z.iso.datetime(),
});
export type RuntimeInfo = z.infer<typeof runtimeInfoSchema>;

export function runtimeFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.CIR_RUNTIME_FILE?.trim() || join(PROJECT_ROOT, '.data', 'runtime.json');
}

export function writeRuntimeFile(info: RuntimeInfo, path = runtimeFilePath()): void {
  mkdirSync(dirname(path), { recursive: true });
  // Write then rename: a reader never sees half a file.
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(runtimeInfoSchema.parse(info), null, 2)}\n`);
  renameSync(tmp, path);
}

/** Removes the file if it is still ours (a second `npm start` may have written its own since). */
export function removeRuntimeFile(pid = process.pid, path = runtimeFilePath()): void {
  const current = readRuntimeFile(path);
  if (current.kind === 'found' && current.info.pid !== pid) return;
  rmSync(path, { force: true });
}

export type RuntimeLookup =
  | { kind: 'found'; info: RuntimeInfo }
  | { kind: 'missing' | 'invalid' | 'stale'; path: string; reason: string };

/** The file as written, without checking its pid. */
export function readRuntimeFile(path = runtimeFilePath()): RuntimeLookup {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return { kind: 'missing', path, reason: `no ${path}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'invalid', path, reason: `${path} is not JSON` };
  }
  const parsed = runtimeInfoSchema.safeParse(json);
  if (!parsed.success) return { kind: 'invalid', path, reason: `${path}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'file'}: ${i.message}`).join('; ')}` };
  return { kind: 'found', info: parsed.data };
}

/** The running `npm start`, if the file names a process that is still alive. */
export function findRunningStart(path = runtimeFilePath()): RuntimeLookup {
  const found = readRuntimeFile(path);
  if (found.kind !== 'found') return found;
  return pidAlive(found.info.pid) ? found : { kind: 'stale', path, reason: `${path} names pid ${found.info.pid}, which is not running` };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
