/**
 * The roster file on the worker's disk: read once (`readRoster`), or watched (`watchRoster`) so an
 * edit takes effect without a restart. A new version that does not validate is reported and the
 * last good one stays in force: a typo in git never leaves the worker without a roster.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseRoster, RosterInvalid, MAX_ROSTER_BYTES } from './parse';
import type { Roster } from './schema';

async function readText(path: string, what: string): Promise<string> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw new RosterInvalid([{ file: path, path: '', message: `${what} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})` }]);
  }
  if (size > MAX_ROSTER_BYTES) throw new RosterInvalid([{ file: path, path: '', message: `${what} is ${size} bytes; at most ${MAX_ROSTER_BYTES}` }]);
  return readFile(path, 'utf8');
}

/** The `allowedSigners` path a roster text names, if any; a text that does not parse is parseRoster's to report. */
function allowedSignersPath(text: string): string | undefined {
  try {
    const value: unknown = (parseYaml(text, { maxAliasCount: 50 }) as { allowedSigners?: unknown } | null)?.allowedSigners;
    return typeof value === 'string' && value.trim() ? value.trim() : undefined;
  } catch {
    return undefined;
  }
}

/** Read and validate the roster at `path` (and the allowed_signers file it names). Throws `RosterInvalid`. */
export async function readRoster(path: string): Promise<Roster> {
  return (await readRosterFiles(resolve(path))).roster;
}

/** The roster, and the files it was read from (the roster's, then the allowed_signers file's). */
async function readRosterFiles(file: string): Promise<{ roster: Roster; files: string[] }> {
  const text = await readText(file, 'the roster');
  const signersPath = allowedSignersPath(text);
  const signersFile = signersPath === undefined ? undefined : resolve(dirname(file), signersPath);
  const allowedSigners = signersFile ? { file: signersFile, text: await readText(signersFile, 'the allowed_signers file') } : undefined;
  return { roster: parseRoster({ file, text, ...(allowedSigners ? { allowedSigners } : {}) }), files: [file, ...(signersFile ? [signersFile] : [])] };
}

export interface RosterWatcher {
  /** The roster in force: the last version that validated. */
  current(): Roster;
  /** Why the newest version on disk is not in force (undefined when it is). */
  lastError(): RosterInvalid | undefined;
  /** Read the file now (what a change on disk triggers). Resolves to the roster in force afterwards. */
  reload(): Promise<Roster>;
  close(): void;
}

export interface WatchOptions {
  /** A new version took effect. */
  onChange?: (roster: Roster, previous: Roster) => void;
  /** A new version did not validate (reported once per distinct problem); `current()` is still the previous one. */
  onError?: (error: RosterInvalid, current: Roster) => void;
  /** Editors write a file in several steps: wait this long after the last event (default 200 ms). */
  debounceMs?: number;
  /** Also check the files' modification times this often, for file systems where fs.watch is blind (default 30 s; 0: never). */
  pollMs?: number;
}

/**
 * Read the roster (throws `RosterInvalid` when the first read fails) and keep it current: the
 * roster's directory is watched (an editor's rename-over replaces the file), and polled as a fallback.
 */
export async function watchRoster(path: string, options: WatchOptions = {}): Promise<RosterWatcher> {
  const file = resolve(path);
  let { roster, files } = await readRosterFiles(file);
  let error: RosterInvalid | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let reading: Promise<Roster> | undefined;
  let again = false;
  const watchers: FSWatcher[] = [];
  const debounceMs = options.debounceMs ?? 200;

  const readOnce = async (): Promise<Roster> => {
    try {
      const next = await readRosterFiles(file);
      error = undefined;
      files = next.files;
      const previous = roster;
      roster = next.roster;
      if (roster.version !== previous.version) options.onChange?.(roster, previous);
    } catch (err) {
      const invalid = err instanceof RosterInvalid ? err : new RosterInvalid([{ file, path: '', message: err instanceof Error ? err.message : String(err) }]);
      // The same problem is reported once, not on every event or poll until it is fixed.
      if (invalid.message !== error?.message) options.onError?.(invalid, roster);
      error = invalid;
    }
    return roster;
  };
  // One read at a time; a change during a read triggers one more.
  const reload = (): Promise<Roster> => {
    if (reading) {
      again = true;
      return reading;
    }
    reading = (async () => {
      let result: Roster;
      do {
        again = false;
        result = await readOnce();
      } while (again && !closed);
      reading = undefined;
      return result;
    })();
    return reading;
  };
  const schedule = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void reload(), debounceMs);
  };

  // The directories, not the files: an editor's save often renames a new file over the old one.
  const watchedNames = () => new Set(files.map((f) => basename(f)));
  for (const dir of new Set(files.map((f) => dirname(f)))) {
    try {
      watchers.push(watch(dir, { persistent: false }, (_event, name) => {
        if (!name || watchedNames().has(name.toString())) schedule();
      }));
    } catch {
      // No fs.watch here (some container mounts): the poll below still notices changes.
    }
  }

  const pollMs = options.pollMs ?? 30_000;
  let lastSeen = '';
  const poll = pollMs > 0 ? setInterval(() => {
    Promise.all(files.map((f) => stat(f).then((st) => `${st.mtimeMs}:${st.size}`, () => 'missing'))).then((seen) => {
      const now = seen.join(',');
      if (lastSeen && now !== lastSeen) schedule();
      lastSeen = now;
    }, () => schedule());
  }, pollMs) : undefined;
  poll?.unref();

  return {
    current: () => roster,
    lastError: () => error,
    reload,
    close() {
      closed = true;
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      for (const w of watchers) w.close();
    },
  };
}
