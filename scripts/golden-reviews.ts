/**
 * Regenerates the post-incident review golden files (tests/golden/reviews/<history>.md) from the
 * recorded incident histories, on purpose: `npm run reviews:golden`, then read the diff.
 * tests/review.test.ts loads the same cases from here.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import type { IncidentState } from '../src/workflows/incident-types';
import { buildReview } from '../src/review/build';
import { renderReviewMarkdown } from '../src/review/render';

export const HISTORY_DIR = join(__dirname, '..', 'tests', 'histories');
export const GOLDEN_DIR = join(__dirname, '..', 'tests', 'golden', 'reviews');

export interface ReviewCase {
  name: string;
  history: temporal.api.history.v1.IHistory;
  /** The decoded result; absent (with `skip` saying why) when the history has none. */
  state?: IncidentState;
  skip?: string;
}

/** The set the golden files are built from: the newest recorded one (scripts/record-histories.ts's SET). */
export const GOLDEN_SET = 'automated';

/** One recorded incident history (`tests/histories/<name>.json`) with its decoded result. */
export function reviewCase(name: string): ReviewCase {
  const history = historyFromJSON(JSON.parse(readFileSync(join(HISTORY_DIR, `${name}.json`), 'utf8')));
  const result = history.events?.at(-1)?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0];
  return result
    ? { name, history, state: defaultPayloadConverter.fromPayload<IncidentState>(result) }
    : { name, history, skip: 'the incident was cancelled: its history holds no result, and no state can be read from it (queries are not recorded)' };
}

/** The golden set's incident histories (the current semantics), without their children. */
export function reviewCases(): ReviewCase[] {
  return readdirSync(HISTORY_DIR)
    .filter((f) => f.startsWith(`${GOLDEN_SET}-`) && f.endsWith('.json') && !/-(revoke_all_sessions|targeted_revocation|reconcile_webhooks)\.json$/.test(f))
    .sort()
    .map((file) => reviewCase(file.replace(/\.json$/, '')));
}

/**
 * The review as it was at `resolved` for an incident that had a post-incident phase: the state
 * without the findings, the commander's action items and the end of the phase (nor their lines).
 */
export function draftOf(state: IncidentState): IncidentState | undefined {
  const p = state.postIncident;
  if (!p) return undefined;
  const { findings: _f, actionItems: _a, final: _e, ...open } = p;
  const cut = state.timeline.findIndex((t) => t.step === 'review' && /^findings from /.test(t.description));
  return { ...state, postIncident: { ...open, completions: 0 }, timeline: cut < 0 ? state.timeline : state.timeline.slice(0, cut) };
}

function writeGoldenFiles(): void {
  mkdirSync(GOLDEN_DIR, { recursive: true });
  for (const c of reviewCases()) {
    if (!c.state) {
      console.log(`skipped ${c.name}: ${c.skip}`);
      continue;
    }
    writeFileSync(join(GOLDEN_DIR, `${c.name}.md`), renderReviewMarkdown(buildReview(c.history, c.state)));
    console.log(`wrote tests/golden/reviews/${c.name}.md`);
    const draft = draftOf(c.state);
    if (draft) {
      writeFileSync(join(GOLDEN_DIR, `${c.name}-draft.md`), renderReviewMarkdown(buildReview(c.history, draft)));
      console.log(`wrote tests/golden/reviews/${c.name}-draft.md`);
    }
  }
}

if (require.main === module) writeGoldenFiles();
