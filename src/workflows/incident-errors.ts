/**
 * How an update is refused before it reaches history: `UpdateRefused`, whose message says why and
 * names the field, and the parse of a request with the update's schema.
 */
import type { z } from 'zod';
import { describeIssues } from '../domain';

export class UpdateRefused extends Error {
  override readonly name = 'UpdateRefused';
}

export function parseRequest<T>(schema: z.ZodType<T>, raw: unknown): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new UpdateRefused(describeIssues(parsed.error, 'update'));
  return parsed.data;
}
