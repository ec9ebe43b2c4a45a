/**
 * The format of payload keys (PAYLOAD_KEYS_FILE, PAYLOAD_KEY): schemas only, no crypto or I/O, so
 * the environment's validation (src/config.ts) and the codec (./index.ts) both import them.
 */
import { z } from 'zod';

const KEY_BYTES = 32;

const keyIdSchema = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a key id is 1-64 letters, digits, dots, dashes or underscores');
const keySchema = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64')
  .transform((v) => Buffer.from(v, 'base64'))
  .refine((b) => b.length === KEY_BYTES, `must be ${KEY_BYTES} bytes (base64 of 32 random bytes: openssl rand -base64 32)`);

/** The shape of PAYLOAD_KEYS_FILE: `{"current":"k2","keys":{"k1":"<base64>","k2":"<base64>"}}`. */
export const keyRingFileSchema = z
  .strictObject({ current: keyIdSchema, keys: z.record(keyIdSchema, keySchema) })
  .refine((f) => f.current in f.keys, { message: 'current must name one of keys', path: ['current'] });

/** PAYLOAD_KEY: `<id>:<base64 of 32 bytes>`. */
export const singleKeySchema = z
  .string()
  .trim()
  .transform((v, ctx) => {
    const at = v.indexOf(':');
    if (at < 0) {
      ctx.addIssue({ code: 'custom', message: 'must be <key id>:<base64 of 32 bytes>' });
      return z.NEVER;
    }
    return { id: v.slice(0, at), key: v.slice(at + 1) };
  })
  .pipe(z.object({ id: keyIdSchema, key: keySchema }));
