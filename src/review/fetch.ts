/**
 * The review of one incident as a client sees it: its event history through the client and its
 * state (the result once completed, else the `getIncidentState` query). The CLI's `review`.
 */
import { writeFile } from 'node:fs/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { getIncidentState } from '../workflows/incident-messages';
import type { IncidentState } from '../workflows/incident-types';
import { decodePayloadsInPlace } from '../codec';
import { buildReview, type IdentityMapping, type Review } from './build';
import { renderReviewMarkdown } from './render';

export async function fetchReview(handle: WorkflowHandle, identities?: IdentityMapping): Promise<Review> {
  const { status } = await handle.describe();
  const state =
    status.name === 'COMPLETED'
      ? ((await handle.result()) as IncidentState)
      : await handle.query(getIncidentState).catch((err: unknown) => {
          const why = err instanceof Error ? err.message : String(err);
          throw new Error(`${handle.workflowId} (${status.name.toLowerCase()}): getIncidentState not answered (${why}); is the worker running? npm run worker`);
        });
  // The history after the state: every line of the state's timeline has its events in it.
  return reviewOf(handle, state, identities);
}

/**
 * The review of `handle`'s incident given its state: its history fetched through the client, read
 * as the codec server would show it when payload encryption is on. The CLI and the activity both.
 */
export async function reviewOf(handle: WorkflowHandle, state: IncidentState, identities?: IdentityMapping): Promise<Review> {
  const history = await handle.fetchHistory();
  await decodePayloadsInPlace(history, handle.client.options.loadedDataConverter.payloadCodecs);
  return buildReview(history, state, identities);
}

/** Markdown (or JSON) to stdout, or to `out` with a line saying where. */
export async function printReview(review: Review, opts: { out?: string; json?: boolean }): Promise<void> {
  const text = opts.json ? `${JSON.stringify(review, null, 2)}\n` : renderReviewMarkdown(review);
  if (!opts.out) return void process.stdout.write(text);
  await writeFile(opts.out, text).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`--out: cannot write ${opts.out}: ${err.code ?? err.message}`);
  });
  console.log(`review of ${review.incidentId} written to ${opts.out}`);
}
