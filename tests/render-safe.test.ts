/**
 * No text forges a record (issue 29 §4), one helper per target: every hostile string of
 * tests/helpers/hostile-text.ts through the terminal, Markdown, Slack and log helpers, then the
 * renderings built on them (the CLI's state and list, the review, the chat message, a log entry)
 * with hostile text in every field, judged by their structure against the same rendering of benign text.
 */
import { describe, expect, it } from 'vitest';
import { formatMessage } from '../src/activities/notify';
import { formatIncidentTable, formatState, type IncidentRow } from '../src/cli/incident-views';
import { chatInline, logLine, markdownBlock, markdownCell, markdownInline, slackText, terminalLine } from '../src/render-safe';
import { renderReviewMarkdown } from '../src/review/render';
import { logRecord } from '../src/worker/logger';
import type { Review } from '../src/review/build';
import { FORGED_TIMELINE, HOSTILE_TEXTS, INVISIBLE, LIVE_MARKDOWN_INLINE, LIVE_SLACK, markdownBlocks } from './helpers/hostile-text';
import { reviewCase } from '../scripts/golden-reviews';
import { buildReview } from '../src/review/build';

const cases = HOSTILE_TEXTS.map((h) => [h.name, h.text] as const);

/** Every string in a value mapped by `f` (arrays keep their length, objects their keys). */
function mapStrings<T>(value: T, f: (s: string, key: string) => string, key = ''): T {
  if (typeof value === 'string') return f(value, key) as T;
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, f, key)) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, f, k)])) as T;
  return value;
}

describe('terminalLine', () => {
  it.each(cases)('%s: one line, nothing invisible, every character shown', (_, text) => {
    const line = terminalLine(text);
    expect(line).not.toMatch(INVISIBLE);
    expect(line.split('\n')).toHaveLength(1);
    expect(terminalLine(line)).toBe(line); // escaping twice changes nothing
  });
  it('shows line breaks, ESC and bidi as escapes, leaves plain text alone and cuts long text', () => {
    expect(terminalLine(`a\n${FORGED_TIMELINE}`)).toBe(`a\\n${FORGED_TIMELINE}`);
    expect(terminalLine('a\r\nb\tc')).toBe('a\\r\\nb\\tc');
    expect(terminalLine('\u001b[31m')).toBe('\\u001b[31m');
    expect(terminalLine('x\u202ey\u200bz')).toBe('x\\u202ey\\u200bz');
    expect(terminalLine('x\u{E0041}')).toBe('x\\u{e0041}');
    expect(terminalLine('Clerk is down — 503 ✓ café')).toBe('Clerk is down — 503 ✓ café');
    expect(terminalLine('A'.repeat(500), 120)).toBe(`${'A'.repeat(119)}…`);
    expect(chatInline('a\nb')).toBe('a\\nb');
  });
});

describe('logLine and logRecord', () => {
  it.each(cases)('%s: a log entry is one record: one line for the message, metadata lines indented', (_, text) => {
    expect(logLine(text)).not.toMatch(INVISIBLE);
    const record = logRecord({ level: 'WARN', message: text, meta: { summary: text, error: new Error(text) }, timestampNanos: 1_764_000_000_000_000_000n });
    const lines = record.replace(/\n$/, '').split('\n');
    expect(lines[0]).toMatch(/^\d{4}-\d{2}-\d{2}T\S+Z \[WARN\] /);
    // Only the first line starts at column 0: nothing in the entry reads as an entry of its own.
    expect(lines.slice(1).filter((l) => !/^\s/.test(l))).toEqual([]);
    expect(record.replace(/\n/g, '')).not.toMatch(INVISIBLE);
  });
});

describe('Markdown', () => {
  it.each(cases)('%s: inline text and cells are one line that opens no block, HTML, link or image', (_, text) => {
    for (const out of [markdownInline(text), markdownCell(text), `| ${markdownCell(text)} |`]) {
      expect(out.split('\n')).toHaveLength(1);
      expect(out).not.toMatch(LIVE_MARKDOWN_INLINE);
    }
    expect(markdownBlocks(markdownInline(text))).toEqual({ headings: [], tableRows: [], blockStarts: [] });
    // A cell's pipes are all escaped: the row keeps its two delimiters.
    expect(`| ${markdownCell(text)} |`.match(/(?<!\\)\|/g)).toHaveLength(2);
  });
  it.each(cases)('%s: a block of text keeps its lines but starts none of them as a block', (_, text) => {
    const block = markdownBlock(text);
    expect(markdownBlocks(block)).toEqual({ headings: [], tableRows: [], blockStarts: [] });
    expect(block).not.toMatch(LIVE_MARKDOWN_INLINE);
    expect(block).not.toMatch(/^ {4}/m); // no indented code
  });
  it('escapes what Markdown would read, and leaves ordinary text readable', () => {
    expect(markdownInline('<script>alert(1)</script>')).toBe('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(markdownInline('[x](javascript:alert(1))')).toBe('\\[x\\](javascript:alert(1))');
    expect(markdownBlock('# h\n---\n1. x')).toBe('\\# h  \n\\---  \n1\\. x');
    expect(markdownCell('a | b\r\nc')).toBe('a \\| b c');
    expect(markdownInline('rotate_secret_key for R&D at 10:03, 5 users')).toBe('rotate_secret_key for R&D at 10:03, 5 users');
  });
});

describe('Slack', () => {
  it.each(cases)('%s: nothing mentions, broadcasts or links', (_, text) => {
    const out = slackText(chatInline(text));
    expect(out).not.toMatch(LIVE_SLACK);
    expect(out).not.toMatch(/[<>]/);
    expect(out.split('\n')).toHaveLength(1);
  });
  it('escapes &, < and > as Slack requires and breaks the @ of a broadcast', () => {
    expect(slackText('<!channel> & <https://evil|label>')).toBe('&lt;!channel&gt; &amp; &lt;https://evil|label&gt;');
    expect(slackText('@here, ops@here.example')).toBe('@\u2060here, ops@here.example');
  });
});

describe('renderings with hostile text in every field', () => {
  const hostile = HOSTILE_TEXTS.filter((h) => h.asInput).map((h) => h.text).join('\n');

  it('incident show: the lines of the state are the lines of its structure, the timeline one line per event', () => {
    const { state } = reviewCase('automated-key-compromise-rotated');
    const attacked = mapStrings(state!, (s, key) => (['summary', 'description', 'note', 'actor', 'reporter', 'title', 'instructions'].includes(key) ? `${s}${hostile}` : s));
    const shown = formatState(attacked).split('\n');
    expect(shown).toHaveLength(formatState(state!).split('\n').length);
    expect(shown.filter((l) => /^ {4}\d{4}-\d{2}-\d{2}T/.test(l))).toHaveLength(attacked.timeline.length);
    expect(shown.slice(1).filter((l) => !l.startsWith('  '))).toEqual([]);
    for (const line of shown) expect(line).not.toMatch(INVISIBLE);
    expect(shown.some((l) => l.trimStart().startsWith(FORGED_TIMELINE))).toBe(false);
  });

  it('incident list: one row per incident', () => {
    const row = (n: number): IncidentRow => ({ workflowId: `incident-${n}`, runId: 'r', status: 'mitigating', executionStatus: 'running', category: 'clerk_outage', severity: 'high', startTime: '2026-12-02T10:00:00.000Z', closeTime: null, taskQueue: 'q', summary: `Incident: ${hostile}` });
    const table = formatIncidentTable([row(1), row(2), row(3)]).split('\n');
    expect(table).toHaveLength(4);
    expect(table.slice(1).map((l) => l.split(' ')[0])).toEqual(['incident-1', 'incident-2', 'incident-3']);
    for (const line of table) expect(line).not.toMatch(INVISIBLE);
  });

  it('the review: the same sections, tables and lists as the review of benign text', () => {
    const c = reviewCase('automated-key-compromise-rotated');
    const review = buildReview(c.history, c.state!);
    // Keep the values the renderer branches on; everything else is attacker-controlled text.
    const keep = new Set(['state', 'not run', 'none']);
    const attacked = mapStrings(review, (s) => (keep.has(s) ? s : `${s}${hostile}`)) as Review;
    const plain = mapStrings(review, (s) => (keep.has(s) ? s : 'x')) as Review;
    const md = renderReviewMarkdown(attacked);
    const expected = renderReviewMarkdown(plain);
    const shapeOf = (m: string) => markdownBlocks(m);
    const got = shapeOf(md);
    const want = shapeOf(expected);
    expect(got.headings.map((h) => h.replace(/:.*/, ''))).toEqual(want.headings.map((h) => h.replace(/:.*/, '')));
    expect(got.headings.slice(1)).toEqual(want.headings.slice(1));
    expect(got.tableRows).toHaveLength(want.tableRows.length);
    expect(got.blockStarts).toHaveLength(want.blockStarts.length);
    expect(md.split('\n').length - expected.split('\n').length).toBe(
      // The summary section keeps the summary's own lines (as hard breaks): that many more, no other.
      markdownBlock(attacked.summary).split('\n').length - 1,
    );
    expect(md).not.toMatch(LIVE_MARKDOWN_INLINE);
    // Each row has the columns of its table: no pipe in the text adds a cell.
    const pipes = (row: string) => row.match(/(?<!\\)\|/g)?.length;
    expect(got.tableRows.map(pipes)).toEqual(want.tableRows.map(pipes));
  });

  it('the chat message: no mention, broadcast or link, and no line of the runbook but its own', () => {
    const message = formatMessage({ kind: 'approval_requested', incidentId: 'incident-1', title: `Approval needed: ${chatInline(hostile)}`, text: `${chatInline(hostile)} asks to turn on the bypass`, step: 'emergency_bypass' }, { namespace: 'default', uiUrl: 'http://localhost:8233' });
    for (const text of [message.text, ...message.blocks.map((b) => b.text.text)]) {
      expect(text).not.toMatch(LIVE_SLACK);
      expect(text).not.toMatch(INVISIBLE_BUT_NEWLINE);
    }
    const bodyLines = message.blocks[1]!.text.text.split('\n');
    expect(bodyLines).toHaveLength(4); // the body, then CLI, Temporal CLI and UI
    expect(bodyLines.slice(1).map((l) => l.split(':')[0])).toEqual(['• CLI', '• Temporal CLI', '• UI']);
    expect(message.blocks[0]!.text.text.split('\n')).toHaveLength(1);
  });
});

/** What must not be in a chat message: invisible characters other than its own line breaks and the word joiner that breaks a broadcast's `@`. */
const INVISIBLE_BUT_NEWLINE = /(?![\n\u2060])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
