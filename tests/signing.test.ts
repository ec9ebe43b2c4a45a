/**
 * SSH signatures (src/signing/sshsig.ts) against what OpenSSH itself makes: ssh-keygen's
 * signatures verify, its fingerprints match, and every malformed, foreign or oversized blob is
 * refused with a one-line reason. The workflow's update validator runs exactly these checks.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { formatMessage } from '../src/activities/notify';
import { demoSigning, readApproverRegistry, signingFromEnv } from '../src/activities/signing';
import { signedStepsSchema } from '../src/signing/policy';
import { GATED_STEPS } from '../src/domain';
import {
  base64Decode,
  base64Encode,
  decisionStatement,
  keysOf,
  parseAllowedSigners,
  parseSshSignature,
  SIGNATURE_NAMESPACE,
  verifySshSignature,
} from '../src/signing/sshsig';
import { keyDir } from './helpers/ssh-keys';
import { shownInSlack } from './helpers/chat-receiver';

const keys = keyDir();
afterAll(() => keys.close());

const bob = keys.key('bob');
const carol = keys.key('carol');
const message = decisionStatement({ workflowId: 'incident-1', runId: 'run-1', step: 'emergency_bypass', decision: 'approve', reason: '', approver: 'bob@example.com', nonce: 'n-1' });

/** Verify `armored` over `text` in our namespace; the refusal's message, or 'ok'. */
function verdict(armored: string, text = message, namespace = SIGNATURE_NAMESPACE): string {
  try {
    verifySshSignature(parseSshSignature(armored), text, namespace);
    return 'ok';
  } catch (err) {
    return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }
}

// -- re-encoding a signature with one field changed (to build malformed ones) ----------------------

const str = (b: Uint8Array | string) => {
  const bytes = typeof b === 'string' ? new TextEncoder().encode(b) : b;
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
};
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const armor = (bytes: Uint8Array) => `-----BEGIN SSH SIGNATURE-----\n${base64Encode(bytes).replace(/(.{70})/g, '$1\n')}\n-----END SSH SIGNATURE-----`;
const bytesOf = (armored: string) => base64Decode(armored.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''));

interface Fields {
  magic: string;
  version: number;
  publicKey: Uint8Array;
  namespace: string;
  hash: string;
  sigType: string;
  sig: Uint8Array;
}
function encode(f: Fields): string {
  const version = new Uint8Array(4);
  new DataView(version.buffer).setUint32(0, f.version);
  return armor(cat(new TextEncoder().encode(f.magic), version, str(f.publicKey), str(f.namespace), str(''), str(f.hash), str(cat(str(f.sigType), str(f.sig)))));
}

const good = keys.sign(bob.file, message, SIGNATURE_NAMESPACE);
const parsed = parseSshSignature(good);
const fields: Fields = { magic: 'SSHSIG', version: 1, publicKey: parsed.publicKey, namespace: SIGNATURE_NAMESPACE, hash: 'sha512', sigType: 'ssh-ed25519', sig: parsed.signature };

describe('signatures made by ssh-keygen -Y sign', () => {
  it('verify, and name the key by the fingerprint ssh-keygen -l prints', () => {
    expect(verdict(good)).toBe('ok');
    expect(parsed).toMatchObject({ fingerprint: bob.fingerprint, namespace: SIGNATURE_NAMESPACE, hashAlgorithm: 'sha512', keyType: 'ssh-ed25519' });
    expect(encode(fields).replace(/\s/g, '')).toBe(good.replace(/\s/g, '')); // the test's encoder agrees with OpenSSH
  });

  it('verify with the sha256 hash too (ssh-keygen -O hashalg=sha256)', () => {
    const armored = keys.sign(bob.file, message, SIGNATURE_NAMESPACE); // default sha512
    expect(parseSshSignature(armored).hashAlgorithm).toBe('sha512');
    const sha256 = execFileSync('ssh-keygen', ['-Y', 'sign', '-n', SIGNATURE_NAMESPACE, '-O', 'hashalg=sha256', '-f', bob.file], { input: message, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    expect(parseSshSignature(sha256).hashAlgorithm).toBe('sha256');
    expect(verdict(sha256)).toBe('ok');
  });

  it('do not verify any other statement: another step, decision, incident, nonce, reason or approver', () => {
    const base = { workflowId: 'incident-1', runId: 'run-1', step: 'emergency_bypass', decision: 'approve' as const, reason: '', approver: 'bob@example.com', nonce: 'n-1' };
    for (const change of [{ step: 'rotate_secret_key' }, { decision: 'reject' as const }, { workflowId: 'incident-2' }, { runId: 'run-2' }, { nonce: 'n-0' }, { reason: ' ' }, { approver: 'carol@example.com' }]) {
      expect(verdict(good, decisionStatement({ ...base, ...change })), JSON.stringify(change)).toBe('SignatureError: does not verify');
    }
    expect(verdict(good, decisionStatement(base))).toBe('ok');
  });

  it('agree with ssh-keygen -Y verify on the same allowed_signers file', () => {
    const file = keys.allowedSigners([`bob@example.com ${bob.publicLine}`], 'verify_signers');
    const sigFile = `${keys.dir}/good.sig`;
    writeFileSync(sigFile, good);
    const out = execFileSync('ssh-keygen', ['-Y', 'verify', '-f', file, '-I', 'bob@example.com', '-n', SIGNATURE_NAMESPACE, '-s', sigFile], { input: message, encoding: 'utf8' });
    expect(out).toContain('Good "clerk-incident-runbook@v1" signature for bob@example.com');
  });
});

describe('a bad-input table: each refused with its reason', () => {
  const rsa = keys.key('rsa-user', 'rsa');
  const truncated = bytesOf(good).subarray(0, bytesOf(good).length - 10);
  const flipped = new Uint8Array(parsed.signature);
  flipped[10] = (flipped[10] as number) ^ 1;
  const cases: [string, string, RegExp][] = [
    ['empty', '', /must be an armored SSH signature/],
    ['not armored', 'hello', /must be an armored SSH signature/],
    ['armor around no base64', '-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----', /not valid base64/],
    ['a PGP signature', '-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----', /must be an armored SSH signature/],
    ['huge (100 000 characters)', `-----BEGIN SSH SIGNATURE-----\n${'A'.repeat(100_000)}\n-----END SSH SIGNATURE-----`, /is 100058 characters; an SSH signature has at most 4096/],
    ['wrong magic', encode({ ...fields, magic: 'SSHSIH' }), /magic "SSHSIG" missing/],
    ['version 2', encode({ ...fields, version: 2 }), /SSHSIG version 2; only version 1/],
    ['cut short', armor(truncated), /cut short/],
    ['trailing bytes', armor(cat(bytesOf(good), new Uint8Array([0, 0]))), /2 byte\(s\) of trailing data/],
    ['hash md5', encode({ ...fields, hash: 'md5' }), /uses hash md5; SSHSIG allows sha512 or sha256/],
    ['hash sha256 claimed over a sha512 signature', encode({ ...fields, hash: 'sha256' }), /does not verify/],
    ['wrong namespace (a git commit signature)', keys.sign(bob.file, message, 'git'), /namespace "git", not "clerk-incident-runbook@v1"/],
    ['namespace changed in the blob', encode({ ...fields, namespace: 'git' }), /namespace "git"/],
    ['an RSA key', keys.sign(rsa.file, message, SIGNATURE_NAMESPACE), /the key is ssh-rsa: only ssh-ed25519 keys are supported/],
    ['signature type not ssh-ed25519', encode({ ...fields, sigType: 'ssh-rsa' }), /is of type ssh-rsa, not ssh-ed25519/],
    ['signature of 63 bytes', encode({ ...fields, sig: parsed.signature.subarray(0, 63) }), /not 64 bytes/],
    ['one bit flipped', encode({ ...fields, sig: flipped }), /does not verify/],
    ['carol’s key claimed with bob’s signature', encode({ ...fields, publicKey: parseSshSignature(keys.sign(carol.file, 'x', SIGNATURE_NAMESPACE)).publicKey }), /does not verify/],
    ['a public key of 31 bytes', encode({ ...fields, publicKey: cat(str('ssh-ed25519'), str(new Uint8Array(31))) }), /not 32 bytes/],
  ];
  it.each(cases)('%s', (_name, armored, reason) => {
    const result = verdict(armored);
    expect(result).toMatch(/^SignatureError: /);
    expect(result).toMatch(reason);
    expect(result).not.toContain('\n');
  });
});

describe('allowed_signers', () => {
  it('reads principals, patterns and namespaces; lists what it cannot use', () => {
    const rsa = keys.key('rsa-user', 'rsa');
    const { signers, problems } = parseAllowedSigners(
      [
        '# the team',
        `bob@example.com,robert@example.com ${bob.publicLine} bob's laptop`,
        `"*@ops.example.com" namespaces="git,${SIGNATURE_NAMESPACE}" ${carol.publicLine}`,
        `carol@example.com cert-authority ${carol.publicLine}`,
        `dave@example.com ${rsa.publicLine}`,
        '!eve@example.com ssh-ed25519 AAAA',
        'only-a-name',
        `frank@example.com ssh-ed25519 ${bob.publicLine.split(' ')[1]?.slice(0, 20)}`,
        '',
      ].join('\n'),
    );
    expect(signers.map((s) => [s.principals, s.fingerprint, s.namespaces])).toEqual([
      [['bob@example.com', 'robert@example.com'], bob.fingerprint, undefined],
      [['*@ops.example.com'], carol.fingerprint, ['git', SIGNATURE_NAMESPACE]],
      [['dave@example.com'], rsa.fingerprint, undefined],
    ]);
    expect(problems).toEqual([
      'line 4: option cert-authority is not supported (only namespaces="…")',
      'line 5: dave@example.com has a ssh-rsa key; only ssh-ed25519 keys can sign decisions',
      expect.stringMatching(/^line 6: /),
      'line 7: expected "<principals> [options] <key type> <base64 key>"',
      expect.stringMatching(/^line 8: the ssh-ed25519 key is not readable/),
    ]);
    expect(keysOf(signers, 'robert@example.com').map((s) => s.fingerprint)).toEqual([bob.fingerprint]);
    expect(keysOf(signers, 'zoe@ops.example.com').map((s) => s.fingerprint)).toEqual([carol.fingerprint]);
    expect(keysOf(signers, 'zoe@ops.example.com.evil')).toEqual([]);
    expect(keysOf(signers, 'mallory@example.com')).toEqual([]);
  });

  it('SIGNED_STEPS: critical by default, all, none, or a list of steps', () => {
    expect(signedStepsSchema.parse(undefined)).toEqual(['emergency_bypass', 'rotate_secret_key', 'revoke_all_sessions']);
    expect(signedStepsSchema.parse('all')).toEqual([...GATED_STEPS]);
    expect(signedStepsSchema.parse('none')).toEqual([]);
    expect(signedStepsSchema.parse('operator_action, emergency_bypass')).toEqual(['operator_action', 'emergency_bypass']);
    expect(signedStepsSchema.safeParse('bypass').error?.issues[0]?.message).toContain('bypass is not a step');
  });
});

describe('the worker\'s registry configuration', () => {
  it('refuses an unreadable registry at start-up and in the activity (non-retryable)', async () => {
    const missing = `${keys.dir}/no-such-file`;
    await expect(signingFromEnv({ APPROVER_ALLOWED_SIGNERS: missing, SIGNED_STEPS: [] }, () => undefined)).rejects.toThrow(`cannot read the approver registry ${missing} (APPROVER_ALLOWED_SIGNERS)`);
    const err = await readApproverRegistry({ allowedSignersPath: missing, steps: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'ApproverRegistryUnreadable', nonRetryable: true });
    expect(await signingFromEnv({ SIGNED_STEPS: [] }, () => undefined)).toBeUndefined();
  });

  it('refuses a registry where one key is more than one person, naming the line; one person under several spellings is one', async () => {
    const [b, c] = [bob.publicLine, carol.publicLine];
    const refused: [string, string[], RegExp][] = [
      ['two principals on one line', [`bob@example.com,robert@example.com ${b}`], /line 1: key SHA256:\S+ names bob@example\.com, robert@example\.com; a key belongs to one person/],
      ['one key on two lines, two names', [`carol@example.com ${c}`, `bob@example.com ${b}`, `robert@example.com ${b}`], /line 3: key SHA256:\S+ is already bob@example\.com's \(line 2\)/],
      ['a pattern and a person sharing a key', [`"*@example.com" ${b}`, `bob@example.com ${b}`], /line 2: key SHA256:\S+ is already \*@example\.com's \(line 1\)/],
      ['three names, one of them full-width', [`alice@example.com ${b}`, `ａｌｉｃｅ@example.com ${c}`, `mallory@example.com ${c}`], /line 3: key SHA256:\S+ is already ａｌｉｃｅ@example\.com's \(line 2\)/],
    ];
    for (const [name, lines, reason] of refused) {
      const path = keys.allowedSigners(lines, `shared_${refused.findIndex((r) => r[0] === name)}`);
      const err = await readApproverRegistry({ allowedSignersPath: path, steps: [] }).catch((e: unknown) => e);
      expect(err, name).toMatchObject({ type: 'ApproverRegistryUnreadable', nonRetryable: true });
      expect((err as Error).message, name).toMatch(reason);
      await expect(signingFromEnv({ APPROVER_ALLOWED_SIGNERS: path, SIGNED_STEPS: [] }, () => undefined), name).rejects.toThrow(/is refused: line \d+: key/);
    }
    // One person, spelled several ways, with one or two keys: accepted, and found under any spelling.
    const samePerson = keys.allowedSigners([`bob@example.com,Bob@Example.com ${b}`, `ＢＯＢ@example.com ${b}`, ` bob@example.com ${c}`], 'one_person');
    const registry = await readApproverRegistry({ allowedSignersPath: samePerson, steps: [] });
    expect(registry.signers).toHaveLength(3);
    for (const spelling of ['bob@example.com', 'BOB@EXAMPLE.COM', 'ｂｏｂ@example.com', ' bob@example.com ']) {
      expect(keysOf(registry.signers, spelling).map((k) => k.line), spelling).toEqual([1, 2, 3]);
    }
    expect(keysOf(registry.signers, 'bob@example.com.evil')).toEqual([]);
  });

  it('sandbox demo: one ed25519 key per demo approver, made once, listed in an allowed_signers file, and where they are said', async () => {
    const said: string[] = [];
    const dir = `${keys.dir}/demo`;
    const deps = await demoSigning(dir, ['emergency_bypass'], (l) => said.push(l));
    expect(deps).toEqual({ allowedSignersPath: `${dir}/allowed_signers`, steps: ['emergency_bypass'] });
    const first = await readApproverRegistry(deps as NonNullable<typeof deps>);
    expect(first.signers.map((s) => [s.principals[0], s.keyType])).toEqual([
      ['bob@example.com', 'ssh-ed25519'],
      ['carol@example.com', 'ssh-ed25519'],
    ]);
    expect(said.join('\n')).toContain(`--sign ${relative(process.cwd(), `${dir}/bob`)}`);
    expect(said.join('\n')).toContain('Signed approvals: 2 key(s)');
    await demoSigning(dir, ['emergency_bypass'], () => undefined);
    expect((await readApproverRegistry(deps as NonNullable<typeof deps>)).signers.map((s) => s.fingerprint)).toEqual(first.signers.map((s) => s.fingerprint));
  });
});

describe('the chat\'s "how to decide" lines', () => {
  const ctx = { namespace: 'default', uiUrl: 'http://localhost:8233' };
  const request = { kind: 'approval_requested' as const, incidentId: 'incident-1', title: 'Approval needed: emergency_bypass', text: 'alice asks …', step: 'emergency_bypass' as const };
  it('give the --sign command and the sign command for the UI when the step must be signed', () => {
    const signed = shownInSlack(formatMessage({ ...request, signed: true }, ctx).text);
    expect(signed).toContain('`npm run incident -- approve incident-1 --step emergency_bypass --approver <you> --sign <~/.ssh/id_ed25519 | agent>`');
    expect(signed).toContain('`npm run incident -- sign incident-1 approve --step emergency_bypass --approver <you> --key <~/.ssh/id_ed25519 | agent>` prints the one JSON object');
    expect(signed).not.toContain('workflow update execute'); // an unsigned update would be refused
    const escalated = shownInSlack(formatMessage({ ...request, kind: 'escalation', signed: true }, ctx).text);
    expect(escalated).toContain('--sign <~/.ssh/id_ed25519 | agent>');
  });
  it('stay unsigned otherwise', () => {
    const plain = formatMessage(request, ctx).text;
    expect(plain).not.toContain('--sign');
    expect(plain).toContain('workflow update execute');
  });
});
