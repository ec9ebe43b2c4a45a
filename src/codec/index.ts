/**
 * Payload encryption (docs/payload-encryption.md): an AES-256-GCM `PayloadCodec` with a key ring
 * (one current key encrypts, every key decrypts, chosen by the key id in the payload's metadata),
 * and `dataConverterFromEnv`, the one way worker, CLI, `npm start` and tests configure it.
 * Codecs run outside the workflow sandbox: the workflow bundle does not import this module.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { z } from 'zod';
import { keyRingFileSchema, singleKeySchema } from './key-format';

/** The metadata of an encrypted payload, as in Temporal's encryption samples. */
export const ENCODING = 'binary/encrypted';
export const METADATA_ENCODING_KEY = 'encoding';
export const METADATA_KEY_ID_KEY = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A payload the codec cannot decrypt: unknown key id, tampered or truncated ciphertext. */
export class PayloadDecryptionError extends Error {
  override readonly name = 'PayloadDecryptionError';
}

/** Bad key configuration (PAYLOAD_KEYS_FILE / PAYLOAD_KEY); the message names the variable. */
export class PayloadKeyConfigError extends Error {
  override readonly name = 'PayloadKeyConfigError';
}

export interface KeyRing {
  /** Id of the key new payloads are encrypted with. */
  current: string;
  keys: ReadonlyMap<string, Buffer>;
}

export function keyRing(current: string, keys: Record<string, Buffer>): KeyRing {
  if (!(current in keys)) throw new PayloadKeyConfigError(`current key ${current} is not among the keys (${Object.keys(keys).join(', ')})`);
  return { current, keys: new Map(Object.entries(keys)) };
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

/** AES-256-GCM over the whole original payload (protobuf-encoded); data = IV ‖ ciphertext ‖ tag. */
export class EncryptionCodec implements PayloadCodec {
  constructor(readonly ring: KeyRing) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const keyId = this.ring.current;
    const key = this.ring.keys.get(keyId)!;
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { [METADATA_ENCODING_KEY]: utf8(ENCODING), [METADATA_KEY_ID_KEY]: utf8(keyId) }, data };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      // Payloads written before encryption was turned on stay readable.
      if (text(payload.metadata?.[METADATA_ENCODING_KEY]) !== ENCODING) return payload;
      const keyId = text(payload.metadata?.[METADATA_KEY_ID_KEY]);
      if (keyId === undefined) throw new PayloadDecryptionError(`encrypted payload without ${METADATA_KEY_ID_KEY} metadata`);
      const key = this.ring.keys.get(keyId);
      if (!key) {
        throw new PayloadDecryptionError(`payload encrypted with unknown key id ${keyId} (known: ${[...this.ring.keys.keys()].join(', ')}); add it to PAYLOAD_KEYS_FILE`);
      }
      const data = Buffer.from(payload.data ?? new Uint8Array());
      if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadDecryptionError(`encrypted payload (key id ${keyId}) is truncated: ${data.length} bytes`);
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      } catch (err) {
        throw new PayloadDecryptionError(`payload (key id ${keyId}) failed authentication: tampered with, or encrypted with another key of that id`, { cause: err });
      }
      return temporal.api.common.v1.Payload.decode(plain) as Payload;
    });
  }
}

/** The variables the codec reads (validated as strings by src/config.ts). */
export interface PayloadKeyEnv {
  PAYLOAD_KEYS_FILE?: string | undefined;
  PAYLOAD_KEY?: string | undefined;
}

const issues = (variable: string, error: z.ZodError) =>
  error.issues.map((i) => `${variable}${i.path.length ? ` ${i.path.join('.')}` : ''}: ${i.message}`).join('; ');

/** The key ring the environment configures, or undefined (encryption off). */
export function keyRingFromEnv(env: PayloadKeyEnv): KeyRing | undefined {
  if (env.PAYLOAD_KEYS_FILE && env.PAYLOAD_KEY) throw new PayloadKeyConfigError('PAYLOAD_KEYS_FILE and PAYLOAD_KEY are both set: use one (the file holds several keys)');
  if (env.PAYLOAD_KEYS_FILE) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(env.PAYLOAD_KEYS_FILE, 'utf8'));
    } catch (err) {
      throw new PayloadKeyConfigError(`PAYLOAD_KEYS_FILE: cannot read ${env.PAYLOAD_KEYS_FILE} as JSON (${err instanceof Error ? err.message : String(err)})`);
    }
    const parsed = keyRingFileSchema.safeParse(json);
    if (!parsed.success) throw new PayloadKeyConfigError(issues('PAYLOAD_KEYS_FILE', parsed.error));
    return keyRing(parsed.data.current, parsed.data.keys);
  }
  if (env.PAYLOAD_KEY) {
    const parsed = singleKeySchema.safeParse(env.PAYLOAD_KEY);
    if (!parsed.success) throw new PayloadKeyConfigError(issues('PAYLOAD_KEY', parsed.error));
    return keyRing(parsed.data.id, { [parsed.data.id]: parsed.data.key });
  }
  return undefined;
}

/** The codec the environment configures, or undefined when no key is set (the sandbox default). */
export function codecFromEnv(env: PayloadKeyEnv): EncryptionCodec | undefined {
  const ring = keyRingFromEnv(env);
  return ring ? new EncryptionCodec(ring) : undefined;
}

/** The data converter of every entry point: encrypting when a key is configured, Temporal's default otherwise. */
export function dataConverterFromEnv(env: PayloadKeyEnv): DataConverter {
  const codec = codecFromEnv(env);
  return codec ? { payloadCodecs: [codec] } : {};
}

/**
 * Decode, in place, every `payloads` list found in `value` (an event history, as fetched) with the
 * codecs, as the UI's codec server would: what the post-incident review reads must be plain JSON.
 */
export async function decodePayloadsInPlace(value: unknown, codecs: readonly PayloadCodec[]): Promise<void> {
  if (!codecs.length || !value || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const item of value) await decodePayloadsInPlace(item, codecs);
    return;
  }
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    if (key === 'payloads' && Array.isArray(child)) {
      let decoded = child as Payload[];
      for (const codec of [...codecs].reverse()) decoded = await codec.decode(decoded);
      (value as Record<string, unknown>)[key] = decoded;
    } else if (child && typeof child === 'object' && !(child instanceof Uint8Array)) {
      await decodePayloadsInPlace(child, codecs);
    }
  }
}
