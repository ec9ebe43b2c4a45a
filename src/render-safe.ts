/**
 * Text from input (a summary, a reason, a name) rendered into each output target with that
 * target's syntax made inert, so no text can forge a line, a row, a section or a mention. One
 * helper per target: the terminal, Markdown, Slack mrkdwn and the worker log. History keeps text
 * as typed; these run where it is rendered. Pure: the workflow, the activities and the CLIs use it.
 */

/**
 * Characters a terminal or a reader would not see as themselves: C0 and C1 controls (newline,
 * carriage return, ESC), line and paragraph separators, and format characters (bidi overrides
 * and isolates, zero-width space and joiners, the BOM), plus lone surrogates.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A character shown as its escape: `\n`, `\r`, `\t`, else `\u202e` style. */
function visible(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  return NAMED[c] ?? (code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`);
}

/** At most `max` characters (by code point), with `…` when cut. */
function clip(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, Math.max(0, max - 1)).join('')}…`;
}

/**
 * Terminal: one line with every control, separator and invisible format character shown as an
 * escape (`\n`, `\u001b`, `\u202e`), never interpreted. `max` clips very long text.
 */
export function terminalLine(text: string, max?: number): string {
  const line = text.replace(INVISIBLE, visible);
  return max === undefined ? line : clip(line, max);
}

/** Terminal: lines the caller built, each escaped on its own (a newline inside one is shown, not printed). */
export const terminalLines = (lines: readonly string[]): string => lines.map((l) => terminalLine(l)).join('\n');

/** Log: one record stays one line; the same escapes as the terminal's, so a log line cannot be forged. */
export const logLine = (text: string): string => terminalLine(text);

/** Line breaks of every kind: CRLF, CR, LF, and the Unicode ones a renderer may break on. */
// eslint-disable-next-line no-control-regex -- finding line breaks is the point
const LINE_BREAKS = /\r\n|[\r\n\u000b\u000c\u0085\u2028\u2029]/g;

/** Invisible characters other than line breaks and tabs, shown as escapes (for Markdown and chat, which keep their own line handling). */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const INVISIBLE_NOT_BREAKS = /(?![\n\r\t\u000b\u000c\u0085\u2028\u2029])[\p{Cc}\p{Cf}\p{Cs}]/gu;

/** Markdown's inline syntax: emphasis, code, links and images, HTML and entities, table pipes, a backslash before punctuation. */
const MD_INLINE = /\\(?=[!-/:-@[-`{-~])|[`*[\]|~<>]|&(?=#?\w+;)|(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu;
const MD_ENTITY: Record<string, string> = { '<': '&lt;', '>': '&gt;', '&': '&amp;' };

/** What starts a block at the beginning of a line: heading, quote, list, setext underline, table, fence, indented code. */
const MD_LINE_START = /^([#+=-]|\d+[.)])/;

const escapeInline = (line: string) => line.replace(INVISIBLE_NOT_BREAKS, visible).replace(/\t/g, ' ').replace(MD_INLINE, (c) => MD_ENTITY[c] ?? `\\${c}`);

function markdownEscape(line: string): string {
  // Leading spaces would make indented code; a leading marker a block: drop the one, escape the other.
  return escapeInline(line).trimStart().replace(MD_LINE_START, (marker: string) => (/^\d/.test(marker) ? marker.replace(/([.)])$/, '\\$1') : `\\${marker}`));
}

/**
 * Markdown inline text (a list item, a title): one line, line breaks as spaces, and nothing in it
 * starts a heading, list, quote, fence, table, HTML, link or image.
 */
export const markdownInline = (text: string): string => markdownEscape(text.replace(LINE_BREAKS, ' '));

/** A Markdown table cell: inline text with `|` escaped, so neither a pipe nor a carriage return splits the row. */
export const markdownCell = (text: string): string => escapeInline(text.replace(LINE_BREAKS, ' '));

/**
 * A Markdown paragraph of several lines: each line escaped as inline text, kept as its own line
 * (a hard break), blank lines kept as paragraph breaks; no line can open a block.
 */
export function markdownBlock(text: string): string {
  return text
    .split(LINE_BREAKS)
    .map((l) => markdownEscape(l))
    .map((l, n, all) => (l && all[n + 1] ? `${l}  ` : l))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** Slack's own escapes: `&`, `<` and `>` (so `<!channel>`, `<@U…>` and `<https://…|label>` are text). */
const SLACK_ENTITY: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };
/** The mentions Slack links from plain text (`link_names`): `@channel`, `@here`, `@everyone` (not an email's `@`). */
const SLACK_MENTION = /(?<![\w.])@(?=(channel|here|everyone)\b)/gi;
/** A word joiner: invisible in the channel, it keeps `@` from being read as a mention. */
const WORD_JOINER = '\u2060';

/**
 * Slack mrkdwn for text that is ours (the runbook's lines): `&`, `<`, `>` escaped as Slack
 * requires and mentions made inert, so nothing in it links or notifies anyone.
 */
export function slackText(text: string): string {
  return text
    .replace(LINE_BREAKS, '\n')
    .replace(INVISIBLE_NOT_BREAKS, visible)
    .replace(/[&<>]/g, (c) => SLACK_ENTITY[c]!)
    .replace(SLACK_MENTION, `@${WORD_JOINER}`);
}

/**
 * Chat: text from input embedded in a message line. One line (breaks shown as `\n`, so it cannot
 * forge a runbook line), controls visible; Slack's syntax is escaped by `slackText` when the
 * whole message is rendered.
 */
export const chatInline = (text: string): string => terminalLine(text);
