/**
 * Key references and the gateway that resolves them: env:, file: (re-read when it changes) and
 * vault: (the sandbox's Vault KV v2 over HTTP); raw keys refused with a message that says why;
 * the Clerk gateway follows a rotated key without a restart, behind one limiter per instance.
 */
import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClerkGateway, createClerkRateLimiters } from '../src/activities/clerk';
import { keyRefSchema, parseKeyRef, providedKeyRefSchema } from '../src/keys/ref';
import { assertClerkSecretKey, authorizeKeyRef, keyRefPolicyFromEnv, type KeyRefPolicy } from '../src/keys/allowlist';
import { loadEnv } from '../src/config';
import { createKeyResolver, createKeySource, fingerprint, KeyRefError } from '../src/keys/resolve';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { runCli } from './helpers/cli';

let sandbox: RunningSandbox;
beforeAll(async () => {
  sandbox = await startSandbox({ users: 5, seed: 'key-refs' });
});
afterAll(async () => {
  await sandbox?.close();
});

describe('key references', () => {
  it('parse the three forms and refuse raw keys and anything else, naming the rule', () => {
    expect(parseKeyRef('env:CLERK_SECRET_KEY')).toEqual({ kind: 'env', name: 'CLERK_SECRET_KEY' });
    expect(parseKeyRef('file:/run/secrets/clerk')).toEqual({ kind: 'file', path: '/run/secrets/clerk' });
    expect(parseKeyRef('vault:secret/clerk/prod#secret_key@3')).toEqual({ kind: 'vault', mount: 'secret', path: 'clerk/prod', field: 'secret_key', version: 3 });
    const raw = keyRefSchema.safeParse('sk_test_abcdefgh12345678');
    expect(raw.success).toBe(false);
    expect(raw.error?.issues[0]?.message).toMatch(/looks like a raw secret key; send a reference/);
    expect(keyRefSchema.safeParse('file:relative/path').error?.issues[0]?.message).toMatch(/must be a key reference \(env:NAME, file:\/absolute\/path or vault:mount\/path#field\)/);
  });

  it('the CLI refuses a raw key for provide-key before anything is sent (usage error, exit 2)', async () => {
    const run = await runCli('src/cli/incident.ts', ['provide-key', 'incident-x', '--ref', 'sk_test_abcdefgh12345678', '--by', 'bob'], { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:9' });
    expect(run.code).toBe(2);
    expect(run.firstError).toMatch(/--ref: this looks like a raw secret key; send a reference/);
  });

  it('env: and file: resolve; a file is re-read when it changes; errors name the reference, never a value', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'key-refs-'));
    const file = join(dir, 'key');
    const resolver = createKeyResolver({ env: { MY_KEY: 'sk_test_fromenv00000000' } });
    expect(await resolver.resolve('env:MY_KEY')).toBe('sk_test_fromenv00000000');
    writeFileSync(file, 'sk_test_first000000000000\n');
    expect(await resolver.resolve(`file:${file}`)).toBe('sk_test_first000000000000');
    writeFileSync(file, 'sk_test_second0000000000000\n');
    expect(await resolver.resolve(`file:${file}`)).toBe('sk_test_second0000000000000');
    const err = await resolver.resolve('env:NOT_SET').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyRefError);
    expect((err as Error).message).toBe('env:NOT_SET: environment variable NOT_SET is not set');
  });

  it('vault: reads and writes KV v2 versions; a write pins what was there before', async () => {
    const resolver = createKeyResolver({ vault: sandbox.vault });
    expect(await resolver.store('vault:secret/app#key', 'sk_test_v1aaaaaaaaaaaaaa')).toEqual({});
    const { previous } = await resolver.store('vault:secret/app#key', 'sk_test_v2bbbbbbbbbbbbbb');
    expect(previous).toBe('vault:secret/app#key@1');
    expect(await resolver.resolve('vault:secret/app#key', { fresh: true })).toBe('sk_test_v2bbbbbbbbbbbbbb');
    expect(await resolver.resolve(previous!)).toBe('sk_test_v1aaaaaaaaaaaaaa');
    const denied = createKeyResolver({ vault: { addr: sandbox.vault.addr, token: 'hvs.wrong' } });
    await expect(denied.resolve('vault:secret/app#key')).rejects.toThrow('vault:secret/app#key: Vault answered 403');
    // The admin view shows fingerprints, not values.
    const view = JSON.stringify(await (await fetch(`${sandbox.url}/__sandbox/vault`)).json());
    expect(view).toContain(fingerprint('sk_test_v2bbbbbbbbbbbbbb'));
    expect(view).not.toContain('sk_test_v2bbbbbbbbbbbbbb');
  });
});

describe('the Clerk gateway with a key reference', () => {
  it('follows a rotated key without a restart (re-resolves once on clerk_key_invalid) and keeps one limiter per instance', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'key-refs-'));
    const file = join(dir, 'worker-key');
    const oldKey = sandbox.admin.addKey({ file, label: 'old' });
    const source = createKeySource(`file:${file}`, createKeyResolver(), 60_000); // a long cache: only the 401 makes it look again
    const limiters = createClerkRateLimiters();
    const made: string[] = [];
    const registry = { limiterFor: (key: string, create: Parameters<typeof limiters.limiterFor>[1]) => (made.push(key), limiters.limiterFor(key, create)) };
    const gateway = createClerkGateway({ secretKey: oldKey.secretKey, keySource: source, apiUrl: sandbox.url, rateLimiters: registry });
    expect(await gateway.countUsers()).toBeGreaterThan(0);

    const newKey = sandbox.admin.addKey({ file, label: 'new' });
    sandbox.admin.deleteKey(oldKey.id);
    expect(await gateway.countUsers()).toBeGreaterThan(0);
    const withOld = sandbox.admin.auditEntries({ keyId: oldKey.id });
    expect(withOld.filter((e) => e.keyState === 'deleted').map((e) => e.status)).toEqual([401]);
    expect(sandbox.admin.auditEntries({ keyId: newKey.id }).length).toBeGreaterThan(0);
    expect(gateway.stats().retries).toBe(1);
    // A second gateway of the same reference shares the limiter, whichever key is current.
    createClerkGateway({ secretKey: newKey.secretKey, keySource: source, apiUrl: sandbox.url, rateLimiters: registry });
    expect(new Set(made).size).toBe(1);
    expect(made[0]).toContain(`ref:file:${file}`);
  });

  it('fails with ClerkKeyInvalid when the reference still gives a dead key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'key-refs-'));
    const file = join(dir, 'dead-key');
    const k = sandbox.admin.addKey({ file });
    sandbox.admin.deleteKey(k.id);
    const gateway = createClerkGateway({ secretKey: k.secretKey, keySource: createKeySource(`file:${file}`, createKeyResolver()), apiUrl: sandbox.url });
    await expect(gateway.countUsers()).rejects.toMatchObject({ name: 'ClerkKeyInvalid', status: 401, code: 'clerk_key_invalid' });
  });
});

describe('references an incident may send (syntax at the workflow, the allowlist where they are resolved)', () => {
  it('the syntax refuses traversal, encoded traversal, /proc /sys /dev and the worker\'s own secrets, naming the rule', () => {
    const refused: [string, RegExp][] = [
      ['file:/run/secrets/../../etc/passwd', /no "\." or "\.\." segments/],
      ['file:/run/secrets/./clerk', /no "\." or "\.\." segments/],
      ['file:/run/secrets//clerk', /no "\/\/"/],
      ['file:/proc/self/environ', /cannot be under \/proc, \/sys, \/dev/],
      ['file:/sys/kernel/notes', /cannot be under/],
      ['file:/dev/stdin', /cannot be under/],
      ['vault:secret/clerk/../admin#key', /no "\." or "\.\." segments/],
      ['vault:secret/%2e%2e/admin#key', /no "%" escapes/],
      ['vault:secret/clerk%2F..%2Fadmin#key', /no "%" escapes/],
      ['env:VERCEL_TOKEN', /VERCEL_TOKEN is one of the worker's own secrets/],
      ['env:CLERK_SECRET_KEY', /one of the worker's own secrets/],
      ['env:VAULT_TOKEN', /one of the worker's own secrets/],
      ['env:PAYLOAD_KEY', /one of the worker's own secrets/],
      ['env:CODEC_SERVER_TOKEN', /one of the worker's own secrets/],
      ['env:TEMPORAL_API_KEY', /one of the worker's own secrets/],
      ['env:GITHUB_TOKEN', /one of the worker's own secrets/],
    ];
    for (const [ref, message] of refused) {
      const parsed = providedKeyRefSchema.safeParse(ref);
      expect(parsed.success, ref).toBe(false);
      expect(parsed.error?.issues[0]?.message, ref).toMatch(message);
    }
    for (const ok of ['env:CLERK_SECRET_KEY_NEXT', 'file:/run/secrets/clerk-new', 'vault:secret/clerk/prod#next_secret_key@2']) expect(providedKeyRefSchema.safeParse(ok).success, ok).toBe(true);
  });

  it('the worker allows only its configured names, directories (symlinks resolved) and Vault paths', async () => {
    const root = mkdtempSync(join(tmpdir(), 'key-allow-'));
    const allowed = join(root, 'secrets');
    const outside = join(root, 'outside');
    mkdirSync(allowed);
    mkdirSync(outside);
    writeFileSync(join(allowed, 'new-key'), 'sk_test_allowed0000000000\n');
    writeFileSync(join(outside, 'other'), 'sk_test_outside0000000000\n');
    symlinkSync(join(outside, 'other'), join(allowed, 'link-out'));
    symlinkSync('/proc/self/environ', join(allowed, 'environ'));
    symlinkSync(outside, join(allowed, 'dir-out'));
    const policy: KeyRefPolicy = { envNames: ['CLERK_SECRET_KEY_NEXT*'], dirs: [allowed], vault: ['secret/clerk'] };
    expect(await authorizeKeyRef(`file:${allowed}/new-key`, policy)).toBe(`file:${realpathSync(allowed)}/new-key`);
    expect(await authorizeKeyRef('env:CLERK_SECRET_KEY_NEXT_2026', policy)).toBe('env:CLERK_SECRET_KEY_NEXT_2026');
    expect(await authorizeKeyRef('vault:secret/clerk/prod#k', policy)).toBe('vault:secret/clerk/prod#k');
    const refusedBy = async (ref: string) => (await authorizeKeyRef(ref, policy).then(() => 'allowed', (e: unknown) => `${(e as Error).name}: ${(e as Error).message}`));
    expect(await refusedBy(`file:${outside}/other`)).toMatch(/^KeyRefRefused: .*not inside a directory this worker allows for keys \(KEY_REF_ALLOWED_DIRS/);
    expect(await refusedBy(`file:${allowed}/link-out`)).toMatch(/^KeyRefRefused: .*not inside a directory/);
    expect(await refusedBy(`file:${allowed}/environ`)).toMatch(/^KeyRefRefused: .*not inside a directory/);
    expect(await refusedBy(`file:${allowed}/dir-out/other`)).toMatch(/^KeyRefRefused: .*not inside a directory/);
    expect(await refusedBy(`file:${allowed}/../outside/other`)).toMatch(/^KeyRefRefused: .*no "\." or "\.\." segments/);
    expect(await refusedBy(`file:${allowed}`)).toMatch(/^KeyRefRefused: .*not inside a directory/);
    expect(await refusedBy('env:MY_KEY')).toMatch(/^KeyRefRefused: env:MY_KEY: MY_KEY is not among the variables this worker allows/);
    expect(await refusedBy('env:VERCEL_TOKEN')).toMatch(/^KeyRefRefused: .*one of the worker's own secrets/);
    expect(await refusedBy('vault:secret/clerkish#k')).toMatch(/^KeyRefRefused: .*not under a Vault path this worker allows/);
    expect(await refusedBy('vault:kv/clerk#k')).toMatch(/^KeyRefRefused: .*not under a Vault path/);
    // A value is sent only when it looks like a Clerk secret key; the refusal never quotes it.
    expect(() => assertClerkSecretKey('file:/x', 'VERCEL_TOKEN=abc\nCLERK_SECRET_KEY=sk_test_abcdefghijkl')).toThrow(/^file:\/x: does not hold a Clerk secret key \(one line, sk_live_… or sk_test_…\); nothing was sent anywhere$/);
    expect(assertClerkSecretKey('file:/x', 'sk_live_abcdefghijklmnop')).toBe('sk_live_abcdefghijklmnop');
  });

  it('the configuration refuses allowlists that name the worker\'s secrets, traversal or /proc', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadEnv(env);
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(problems({ KEY_REF_ALLOWED_ENV: 'VERCEL_TOKEN' })).toMatch(/KEY_REF_ALLOWED_ENV: VERCEL_TOKEN names one of the worker's own secrets/);
    expect(problems({ KEY_REF_ALLOWED_ENV: 'CLERK_SECRET_KEY*' })).toMatch(/KEY_REF_ALLOWED_ENV: CLERK_SECRET_KEY\* names one of the worker's own secrets/);
    expect(problems({ KEY_REF_ALLOWED_ENV: '*' })).toMatch(/KEY_REF_ALLOWED_ENV: must be variable names or prefixes/);
    expect(problems({ KEY_REF_ALLOWED_ENV: 'CLERK*' })).toMatch(/KEY_REF_ALLOWED_ENV: CLERK\*: a prefix needs at least 6 characters/);
    expect(problems({ KEY_REF_ALLOWED_DIRS: '/proc' })).toMatch(/KEY_REF_ALLOWED_DIRS: \/proc: keys cannot be read from/);
    expect(problems({ KEY_REF_ALLOWED_DIRS: '/run/secrets/../..' })).toMatch(/KEY_REF_ALLOWED_DIRS: .*without "\." or "\.\." segments/);
    expect(problems({ KEY_REF_ALLOWED_DIRS: 'relative/dir' })).toMatch(/must be an absolute path/);
    expect(problems({ KEY_REF_ALLOWED_VAULT: 'secret/../sys' })).toMatch(/KEY_REF_ALLOWED_VAULT: secret\/\.\.\/sys: must be a mount/);
    expect(problems({ KEY_REF_ALLOWED_VAULT: 'secret/%2e%2e' })).toMatch(/KEY_REF_ALLOWED_VAULT: .*must be a mount/);
    const env = loadEnv({ KEY_REF_ALLOWED_ENV: 'CLERK_SECRET_KEY_NEXT, CLERK_ROTATED_*', KEY_REF_ALLOWED_DIRS: '/run/secrets,/etc/clerk', KEY_EXPOSURE_LOOKBACK: '7d' });
    expect(keyRefPolicyFromEnv(env)).toEqual({ envNames: ['CLERK_SECRET_KEY_NEXT', 'CLERK_ROTATED_*'], dirs: ['/run/secrets', '/etc/clerk'], vault: ['secret/clerk'] });
    expect(env.KEY_EXPOSURE_LOOKBACK).toBe(7 * 86_400_000);
    expect(keyRefPolicyFromEnv(loadEnv({}))).toEqual({ envNames: ['CLERK_SECRET_KEY_NEXT*'], dirs: ['/run/secrets'], vault: ['secret/clerk'] });
  });
});
