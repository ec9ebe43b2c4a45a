/** Read-only probes of the systems around an incident. Each is bounded by its own timeout. */
import { z } from 'zod';
import { ApplicationFailure } from '@temporalio/common';
import { STATUS_INDICATORS, type StatusIndicator } from '../domain';

const statusSchema = z.object({
  status: z.object({ indicator: z.enum(STATUS_INDICATORS), description: z.string() }),
});

export interface StatusPageResult {
  url: string;
  indicator: StatusIndicator;
  description: string;
  latencyMs: number;
}

/**
 * Fetch a Statuspage v2 `status.json`. A timeout, a network error or a 5xx is retryable (the
 * status page itself can be flaky during an outage); a malformed body is not.
 */
export async function fetchStatusPage(baseUrl: string, timeoutMs: number): Promise<StatusPageResult> {
  const url = new URL('/api/v2/status.json', baseUrl).toString();
  const started = performance.now();
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const timedOut = err instanceof Error && err.name === 'TimeoutError';
    throw ApplicationFailure.create({
      type: timedOut ? 'StatusPageTimeout' : 'StatusPageUnreachable',
      message: timedOut ? `${url} did not answer within ${timeoutMs} ms` : `${url} unreachable: ${String(err)}`,
    });
  }
  if (!response.ok) {
    throw ApplicationFailure.create({
      type: 'StatusPageHttpError',
      message: `${url} answered HTTP ${response.status}`,
      nonRetryable: response.status < 500,
    });
  }
  const parsed = statusSchema.safeParse(await response.json().catch(() => undefined));
  if (!parsed.success) {
    throw ApplicationFailure.create({
      type: 'StatusPageMalformed',
      message: `${url} did not return Statuspage v2 JSON`,
      nonRetryable: true,
    });
  }
  return {
    url,
    indicator: parsed.data.status.indicator,
    description: parsed.data.status.description,
    latencyMs: Math.round(performance.now() - started),
  };
}
