/**
 * Activities, built by a factory with their dependencies so the worker, the tests and the
 * sandbox mode inject configuration instead of reading globals. Workflows import the type only.
 */
import { fetchStatusPage, type StatusPageResult } from './probes';

export interface ActivityDeps {
  /** Base URL of the Clerk status page (real: https://status.clerk.com; sandbox: its own). */
  statusPageUrl: string;
  /** True when talking to the project's Clerk sandbox instead of real Clerk. */
  sandbox: boolean;
}

export function createActivities(deps: ActivityDeps) {
  return {
    async probeStatusPage(input: { timeoutMs: number }): Promise<StatusPageResult & { sandbox: boolean }> {
      const result = await fetchStatusPage(deps.statusPageUrl, input.timeoutMs);
      return { ...result, sandbox: deps.sandbox };
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
