/**
 * SSH signatures as `ssh-keygen -Y sign` makes them and git uses them (the SSHSIG format of
 * OpenSSH's PROTOCOL.sshsig), and the `allowed_signers` file that says whose key is whose. Pure
 * JS — no Node APIs — so the workflow's update validator verifies signatures itself, before a
 * decision reaches history. Only ssh-ed25519 keys are verified; others are refused by name.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { personKey } from '../domain';

/** Our own signature namespace (`ssh-keygen -Y sign -n …`): a git commit signature never verifies here. */
export const SIGNATURE_NAMESPACE = 'clerk-incident-runbook@v1';

/** Longest armored signature accepted: an Ed25519 one is about 300 characters. */
export const MAX_SIGNATURE_CHARS = 4096;

const ARMOR_BEGIN = '-----BEGIN SSH SIGNATURE-----';
const ARMOR_END = '-----END SSH SIGNATURE-----';
const MAGIC = new TextEncoder().encode('SSHSIG');
const ED25519 = 'ssh-ed25519';

/** A signature or a key that cannot be used; the message is one line and says why. */
export class SignatureError extends Error {
  override readonly name = 'SignatureError';
}

// -- base64 and the SSH wire format (RFC 4251 strings) --------------------------------------------

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]));

export function base64Decode(text: string): Uint8Array {
  const clean = text.replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]*$/.test(clean) || clean.length % 4 === 1) throw new SignatureError('not valid base64');
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let at = 0;
  for (const c of clean) {
    value = (value << 6) | (B64_INDEX.get(c) as number);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (value >> bits) & 0xff;
    }
  }
  return out;
}

export function base64Encode(bytes: Uint8Array, pad = true): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let k = 0; k < chars; k++) out += B64[(n >> (18 - 6 * k)) & 63];
  }
  return pad ? out.padEnd(Math.ceil(out.length / 4) * 4, '=') : out;
}

class WireReader {
  private at = 0;
  constructor(private readonly bytes: Uint8Array, private readonly what: string) {}
  uint32(): number {
    if (this.at + 4 > this.bytes.length) throw new SignatureError(`${this.what} is cut short`);
    const b = this.bytes;
    const n = (((b[this.at] as number) << 24) >>> 0) + ((b[this.at + 1] as number) << 16) + ((b[this.at + 2] as number) << 8) + (b[this.at + 3] as number);
    this.at += 4;
    return n;
  }
  raw(length: number): Uint8Array {
    if (this.at + length > this.bytes.length) throw new SignatureError(`${this.what} is cut short`);
    const out = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return out;
  }
  string(): Uint8Array {
    return this.raw(this.uint32());
  }
  text(): string {
    return new TextDecoder('utf-8', { fatal: false }).decode(this.string());
  }
  end(): void {
    if (this.at !== this.bytes.length) throw new SignatureError(`${this.what} has ${this.bytes.length - this.at} byte(s) of trailing data`);
  }
}

function wireString(data: Uint8Array | string): Uint8Array {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

// -- public keys -----------------------------------------------------------------------------------

/** `SHA256:…` of a public key blob, as `ssh-keygen -l` prints it. */
export function fingerprint(keyBlob: Uint8Array): string {
  return `SHA256:${base64Encode(sha256(keyBlob), false)}`;
}

/** The key type a public key blob names (its first string), e.g. `ssh-ed25519`. */
export function keyTypeOf(keyBlob: Uint8Array): string {
  return new WireReader(keyBlob, 'the public key').text();
}

/** The 32-byte Ed25519 point of an `ssh-ed25519` key blob; refuses other key types by name. */
function ed25519Point(keyBlob: Uint8Array): Uint8Array {
  const r = new WireReader(keyBlob, 'the public key');
  const type = r.text();
  if (type !== ED25519) throw new SignatureError(`the key is ${type.slice(0, 40)}: only ssh-ed25519 keys are supported`);
  const point = r.string();
  r.end();
  if (point.length !== 32) throw new SignatureError('the ssh-ed25519 key is not 32 bytes');
  return point;
}

// -- allowed_signers -------------------------------------------------------------------------------

/** One key of the approver registry, as recorded in history: public, so safe to record. */
export interface AllowedSigner {
  /** Who may sign with it: email addresses or patterns (`*@example.com`), as in git's allowed_signers. */
  principals: string[];
  keyType: string;
  /** The key blob, base64 (the second field of a `.pub` line). */
  publicKey: string;
  fingerprint: string;
  /** `namespaces="…"` of the line: when present, the signature namespace must be one of them. */
  namespaces?: string[];
  /** 1-based line in the file, for messages. */
  line: number;
}

export interface AllowedSigners {
  signers: AllowedSigner[];
  /** Lines that could not be used, one sentence each (`line 4: cert-authority keys are not supported`). */
  problems: string[];
}

/** Split a line into fields on blanks, keeping double-quoted parts (`namespaces="a,b"`) whole. */
function fields(line: string): string[] {
  return line.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
}

const KEY_TYPE = /^(ssh-|ecdsa-|sk-)/;

/**
 * Parse an `allowed_signers` file (`principals [options] keytype base64 [comment]`, see
 * ssh-keygen(1) ALLOWED SIGNERS). Lines it cannot use are listed in `problems`, never guessed at:
 * `cert-authority`, validity windows and negated principals are not supported.
 */
export function parseAllowedSigners(text: string): AllowedSigners {
  const signers: AllowedSigner[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    const number = index + 1;
    if (!line || line.startsWith('#')) return;
    const f = fields(line);
    const keyAt = f.findIndex((x, i) => i > 0 && KEY_TYPE.test(x));
    if (keyAt < 1 || !f[keyAt + 1]) return void problems.push(`line ${number}: expected "<principals> [options] <key type> <base64 key>"`);
    const principals = (f[0] as string).replace(/^"|"$/g, '').split(',').map((p) => p.trim()).filter(Boolean);
    const options = f.slice(1, keyAt).flatMap((o) => o.match(/(?:[^,"]+|"[^"]*")+/g) ?? []);
    let namespaces: string[] | undefined;
    for (const option of options) {
      const [name, value] = [option.split('=')[0]?.toLowerCase(), option.slice(option.indexOf('=') + 1).replace(/^"|"$/g, '')];
      if (name === 'namespaces') namespaces = value.split(',').map((n) => n.trim()).filter(Boolean);
      else return void problems.push(`line ${number}: option ${name} is not supported (only namespaces="…")`);
    }
    if (principals.some((p) => p.startsWith('!'))) return void problems.push(`line ${number}: negated principals are not supported`);
    const keyType = f[keyAt] as string;
    let blob: Uint8Array;
    try {
      blob = base64Decode(f[keyAt + 1] as string);
      if (keyTypeOf(blob) !== keyType) throw new SignatureError(`the key says it is ${keyTypeOf(blob).slice(0, 40)}`);
      if (keyType === ED25519) ed25519Point(blob);
    } catch (err) {
      return void problems.push(`line ${number}: the ${keyType} key is not readable (${err instanceof Error ? err.message : String(err)})`);
    }
    if (keyType !== ED25519) problems.push(`line ${number}: ${principals.join(',')} has a ${keyType} key; only ssh-ed25519 keys can sign decisions`);
    signers.push({ principals, keyType, publicKey: base64Encode(blob), fingerprint: fingerprint(blob), ...(namespaces ? { namespaces } : {}), line: number });
  });
  return { signers, problems };
}

/** ssh's pattern match (`*` any run, `?` one character), both sides compared as people are (`personKey`). */
function matchesPattern(rawName: string, rawPattern: string): boolean {
  const [name, pattern] = [personKey(rawName), personKey(rawPattern)];
  if (!/[*?]/.test(pattern)) return name === pattern;
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(name);
}

/** The registry's keys for `principal`. */
export function keysOf(signers: readonly AllowedSigner[], principal: string): AllowedSigner[] {
  return signers.filter((s) => s.principals.some((p) => matchesPattern(principal, p)));
}

// -- SSHSIG -----------------------------------------------------------------------------------------

export interface SshSignature {
  publicKey: Uint8Array;
  fingerprint: string;
  keyType: string;
  namespace: string;
  hashAlgorithm: 'sha512' | 'sha256';
  signatureType: string;
  signature: Uint8Array;
}

/** Parse an armored SSH signature (`-----BEGIN SSH SIGNATURE-----`); checks its shape, not its validity. */
export function parseSshSignature(armored: string): SshSignature {
  if (armored.length > MAX_SIGNATURE_CHARS) throw new SignatureError(`is ${armored.length} characters; an SSH signature has at most ${MAX_SIGNATURE_CHARS}`);
  const text = armored.trim();
  if (!text.startsWith(ARMOR_BEGIN) || !text.endsWith(ARMOR_END)) throw new SignatureError(`must be an armored SSH signature (${ARMOR_BEGIN} … ${ARMOR_END}), as ssh-keygen -Y sign writes it`);
  const body = text.slice(ARMOR_BEGIN.length, text.length - ARMOR_END.length).replace(/\s+/g, '');
  let bytes: Uint8Array;
  try {
    bytes = base64Decode(body);
  } catch {
    throw new SignatureError('the armored SSH signature is not valid base64');
  }
  const r = new WireReader(bytes, 'the SSH signature');
  if (!equalBytes(r.raw(MAGIC.length), MAGIC)) throw new SignatureError('is not an SSHSIG signature (magic "SSHSIG" missing)');
  const version = r.uint32();
  if (version !== 1) throw new SignatureError(`has SSHSIG version ${version}; only version 1 is known`);
  const publicKey = r.string();
  const namespace = r.text();
  r.string(); // reserved
  const hashAlgorithm = r.text();
  const sigBlob = r.string();
  r.end();
  if (hashAlgorithm !== 'sha512' && hashAlgorithm !== 'sha256') throw new SignatureError(`uses hash ${hashAlgorithm.slice(0, 40)}; SSHSIG allows sha512 or sha256`);
  const sr = new WireReader(sigBlob, 'the signature blob');
  const signatureType = sr.text();
  const signature = sr.string();
  sr.end();
  return { publicKey, fingerprint: fingerprint(publicKey), keyType: keyTypeOf(publicKey), namespace, hashAlgorithm, signatureType, signature };
}

/** The bytes an SSHSIG signature signs for `message` (PROTOCOL.sshsig, "Signed Data"). */
export function signedData(namespace: string, hashAlgorithm: 'sha512' | 'sha256', message: Uint8Array): Uint8Array {
  const digest = hashAlgorithm === 'sha512' ? sha512(message) : sha256(message);
  return concat([MAGIC, wireString(namespace), wireString(new Uint8Array(0)), wireString(hashAlgorithm), wireString(digest)]);
}

/**
 * Verify `sig` over `message` in `namespace` (ssh-keygen -Y verify semantics, RFC 8032 strict
 * Ed25519 as OpenSSH checks it). Throws `SignatureError` saying why it does not verify.
 */
export function verifySshSignature(sig: SshSignature, message: string, namespace: string): void {
  if (sig.namespace !== namespace) throw new SignatureError(`was made for namespace "${sig.namespace.slice(0, 60)}", not "${namespace}" (sign with ssh-keygen -Y sign -n ${namespace})`);
  const point = ed25519Point(sig.publicKey);
  if (sig.signatureType !== ED25519) throw new SignatureError(`is of type ${sig.signatureType.slice(0, 40)}, not ${ED25519}`);
  if (sig.signature.length !== 64) throw new SignatureError('the Ed25519 signature is not 64 bytes');
  const data = signedData(namespace, sig.hashAlgorithm, new TextEncoder().encode(message));
  let ok = false;
  try {
    ok = ed25519.verify(sig.signature, data, point, { zip215: false });
  } catch {
    ok = false;
  }
  if (!ok) throw new SignatureError('does not verify');
}

// -- what approvers sign -----------------------------------------------------------------------------

export interface DecisionStatement {
  workflowId: string;
  runId: string;
  step: string;
  /** approve or reject; with a roster, any action of its policy (request, confirm, provide_key…). */
  decision: string;
  /** The approval's comment or the rejection's reason, as sent ('' when none); for other actions, `actionText` of the request. */
  reason: string;
  approver: string;
  /** The pending request's nonce (the query shows it). */
  nonce: string;
}

/**
 * The canonical statement an approver signs: one JSON object, fields in this order, so the CLI,
 * a person at a terminal and the workflow build the same bytes.
 */
export function decisionStatement(s: DecisionStatement): string {
  return JSON.stringify({
    statement: 'clerk-incident-runbook decision',
    version: 1,
    workflowId: s.workflowId,
    runId: s.runId,
    step: s.step,
    decision: s.decision,
    reason: s.reason,
    approver: s.approver,
    nonce: s.nonce,
  });
}
