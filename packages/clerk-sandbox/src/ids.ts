/**
 * The sandbox's randomness and ids: the seeded generator every reproducible choice draws from
 * (data, faults, webhook drops), Clerk-looking ids derived from a seed and a row index, and
 * crypto-random base62 for secrets.
 */
import { randomBytes } from 'node:crypto';

/** sfc32 seeded through cyrb128: small, fast, good enough for test data; never Math.random. */
export function createRng(seed: string | number): () => number {
  const str = String(seed);
  let h1 = 1779033703, h2 = 3144134277, h3 = 1013904242, h4 = 2773480762;
  for (let i = 0; i < str.length; i++) {
    const k = str.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  let a = (h1 ^ h2 ^ h3 ^ h4) >>> 0, b = (h2 ^ h1) >>> 0, c = (h3 ^ h1) >>> 0, d = (h4 ^ h1) >>> 0;
  return () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    const t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    const r = (t + d) | 0;
    c = (c + r) | 0;
    return (r >>> 0) / 4294967296;
  };
}

const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const INDEX_WIDTH = 8;

export function toBase62(n: number, width: number): string {
  let s = '';
  let v = n;
  do {
    s = B62[v % 62] + s;
    v = Math.floor(v / 62);
  } while (v > 0);
  return s.padStart(width, '0');
}

/** The number a base62 string encodes, or -1 if it has a character outside the alphabet. */
export function fromBase62(s: string): number {
  let v = 0;
  for (const ch of s) {
    const d = B62.indexOf(ch);
    if (d < 0) return -1;
    v = v * 62 + d;
  }
  return v;
}

/** `n` crypto-random base62 characters (secret keys, key ids). */
export function randomBase62(n: number): string {
  let s = '';
  for (const b of randomBytes(n)) s += B62[b % 62];
  return s;
}

/** Ids look like Clerk's (`user_` + 27 base62 chars): a tag derived from the seed + the row index. */
export class IdCodec {
  private readonly head: string;
  constructor(readonly prefix: string, tag: string) {
    this.head = `${prefix}_${tag}`;
  }
  encode(index: number): string {
    return this.head + toBase62(index, INDEX_WIDTH);
  }
  decode(id: string): number {
    if (id.length !== this.head.length + INDEX_WIDTH || !id.startsWith(this.head)) return -1;
    return fromBase62(id.slice(this.head.length));
  }
}

function seedTag(seed: string | number, kind: string): string {
  const rng = createRng(`${seed}:${kind}`);
  let s = '2'; // Clerk ids start with a version digit
  for (let i = 0; i < 27 - INDEX_WIDTH - 1; i++) s += B62[Math.floor(rng() * 62)];
  return s;
}

/** The id codecs of one seeded instance. */
export interface InstanceIds {
  user: IdCodec;
  session: IdCodec;
  client: IdCodec;
  email: IdCodec;
  activity: IdCodec;
}

export function instanceIds(seed: string | number): InstanceIds {
  return {
    user: new IdCodec('user', seedTag(seed, 'user')),
    session: new IdCodec('sess', seedTag(seed, 'sess')),
    client: new IdCodec('client', seedTag(seed, 'client')),
    email: new IdCodec('idn', seedTag(seed, 'idn')),
    activity: new IdCodec('sess_activity', seedTag(seed, 'act')),
  };
}
