/**
 * Secrets must never enter workflow history. This turns a history (as fetched, or as exported
 * JSON) into searchable text, decoding every payload (they are base64 in JSON, bytes when
 * fetched), and finds anything shaped like a Clerk secret key or a webhook signing secret.
 */
const SECRET_PATTERNS: readonly RegExp[] = [/sk_(?:test|live)_[A-Za-z0-9]{8,}/g, /whsec_[A-Za-z0-9+/=]{8,}/g];

function decodePayloadData(data: unknown): string | undefined {
  if (data instanceof Uint8Array) return Buffer.from(data).toString('utf8');
  if (typeof data === 'string') return Buffer.from(data, 'base64').toString('utf8');
  return undefined;
}

/** Every string in the history plus every payload's decoded data. */
export function historyText(history: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  const walk = (node: unknown): void => {
    if (node === null || node === undefined) return;
    if (typeof node === 'string') {
      parts.push(node);
      return;
    }
    if (typeof node !== 'object' || seen.has(node)) return;
    seen.add(node);
    if (node instanceof Uint8Array) return;
    const record = node as Record<string, unknown>;
    if ('data' in record && 'metadata' in record) {
      const decoded = decodePayloadData(record.data);
      if (decoded !== undefined) parts.push(decoded);
    }
    for (const value of Array.isArray(node) ? node : Object.values(record)) walk(value);
  };
  walk(history);
  return parts.join('\n');
}

/** The secret-shaped strings found in a history, plus any of `known` (exact secrets in play). */
export function findSecrets(history: unknown, known: readonly string[] = []): string[] {
  const text = historyText(history);
  const found = new Set<string>();
  for (const pattern of SECRET_PATTERNS) for (const match of text.matchAll(pattern)) found.add(match[0]);
  for (const secret of known) if (secret && text.includes(secret)) found.add(secret);
  return [...found];
}

/**
 * Workflow ids of starts a test makes with a secret in the input on purpose (a refused start keeps
 * its input in the start event: Temporal records it before any code runs). The suite's scan skips
 * only these; tests/bad-input.test.ts asserts each failed at its first task with nothing run.
 */
export const DELIBERATE_SECRET_PREFIX = 'deliberate-secret-start-';
