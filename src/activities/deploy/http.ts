/**
 * One JSON-over-HTTP call to a deployment platform, with its failures classified
 * (`errors.ts`). The token goes in a header only; it never appears in an error message.
 */
import { retryAfterMs } from '../http-errors';
import { DeployUnavailable, errorForStatus, type AdapterName } from './errors';

export interface HttpCall {
  adapter: AdapterName;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  /** For messages: the route as the platform documents it, e.g. `POST /v10/projects/{idOrName}/env`. */
  operation: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  fetch?: typeof fetch;
  /** How a non-2xx answer is classified; default `errorForStatus` (rollbacks use their own). */
  classify?: typeof errorForStatus;
}

/** Vercel's error body is `{ error: { code, message } }`; anything else is summarised by its start. */
function errorBody(text: string): { code?: string; message?: string } {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && 'error' in parsed) {
      const e = (parsed as { error: unknown }).error;
      if (e && typeof e === 'object') {
        const { code, message } = e as { code?: unknown; message?: unknown };
        return { ...(typeof code === 'string' ? { code } : {}), ...(typeof message === 'string' ? { message } : {}) };
      }
    }
  } catch {
    // not JSON: fall through
  }
  const trimmed = text.trim().slice(0, 200);
  return trimmed ? { message: trimmed } : {};
}

/** The parsed JSON answer of a 2xx (undefined when empty); throws a `DeployError` otherwise. */
export async function callJson(call: HttpCall): Promise<unknown> {
  let res: Response;
  try {
    res = await (call.fetch ?? fetch)(call.url, {
      method: call.method,
      headers: call.headers,
      ...(call.body !== undefined ? { body: call.body } : {}),
      signal: AbortSignal.timeout(call.timeoutMs),
    });
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    const why = timedOut ? `no answer within ${call.timeoutMs} ms` : err instanceof Error ? err.message : String(err);
    throw new DeployUnavailable(`${call.adapter}: ${call.operation} failed: ${why}`, { adapter: call.adapter, operation: call.operation, cause: err });
  }
  const text = await res.text();
  if (!res.ok) throw (call.classify ?? errorForStatus)(call.adapter, call.operation, res.status, errorBody(text), retryAfterMs(res.headers));
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new DeployUnavailable(`${call.adapter}: ${call.operation} answered ${res.status} with a body that is not JSON`, {
      adapter: call.adapter,
      operation: call.operation,
      status: res.status,
    });
  }
}
