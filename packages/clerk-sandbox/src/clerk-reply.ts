/**
 * Clerk-shaped answers, shared by the request pipeline and the Backend API routes: the error
 * body `{errors:[...], clerk_trace_id}` and JSON sent with Content-Type exactly as Clerk sends it.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyReply } from 'fastify';

interface ClerkErrorItem {
  code: string;
  message: string;
  long_message: string;
  meta: Record<string, unknown>;
}

function traceId(): string {
  return randomBytes(16).toString('hex');
}

export function clerkErrors(code: string, message: string, longMessage: string, meta: Record<string, unknown> = {}) {
  const errors: ClerkErrorItem[] = [{ code, message, long_message: longMessage, meta }];
  return { errors, clerk_trace_id: traceId() };
}

/**
 * The SDK parses a body as JSON only when Content-Type is exactly `application/json` (as Clerk
 * sends it); fastify appends `; charset=utf-8` to strings, not to a Buffer.
 */
export function sendClerk(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return sendClerkJson(reply, status, JSON.stringify(body));
}

/** `sendClerk` for a body already serialised (list pages built as strings). */
export function sendClerkJson(reply: FastifyReply, status: number, json: string): FastifyReply {
  return reply.code(status).header('content-type', 'application/json').send(Buffer.from(json));
}

export type ClerkParamCode = 'form_param_format_invalid' | 'form_param_value_invalid' | 'form_param_missing';

/** A request parameter Clerk would reject (422 form_param_* errors). */
export class ClerkParamError extends Error {
  constructor(
    readonly param: string,
    readonly code: ClerkParamCode,
    readonly longMessage: string,
  ) {
    super(longMessage);
  }
}

export class ClerkNotFound extends Error {}
