/**
 * The post-incident review as Markdown: the sections of `Review` (src/review/build.ts) in the
 * runbook's template order. Pure, like the builder.
 */
import { NOT_GIVEN, type DecisionRow, type Review, type TimeSource } from './build';
import { markdownBlock, markdownCell, markdownInline } from '../render-safe';

/** Decisions whose client identity does not match the configured mapping, under the table. */
function identityFlags(rows: readonly DecisionRow[]): string[] {
  const flagged = rows.filter((d) => d.mismatch);
  return flagged.length ? ['', '**Identity mismatches** (against `APPROVER_IDENTITIES`):', '', ...flagged.map((d) => `- ${markdownInline(`#${d.eventId} ${d.update} ${d.step}: ${d.mismatch ?? ''}`)}`)] : [];
}

/** Decisions of one gate by two people from one client identity (with a roster), under the table. */
function sharedIdentities(rows: readonly DecisionRow[]): string[] {
  const flagged = rows.filter((d) => d.sharedIdentity);
  return flagged.length ? ['', '**Shared client identities** (one client decided for two people):', '', ...flagged.map((d) => `- ${markdownInline(`#${d.eventId} ${d.update} ${d.step}: ${d.sharedIdentity ?? ''}`)}`)] : [];
}

/** Signed decisions (docs/signed-approvals.md): who, the key that signed, and the client identity Temporal recorded. */
function signedDecisions(rows: readonly DecisionRow[]): string[] {
  const signed = rows.filter((d) => d.fingerprint);
  return signed.length
    ? ['', '**Signed decisions** (SSH signatures verified against the roster or the approver registry before they reached history):', '', ...signed.map((d) => `- ${markdownInline(`#${d.eventId} ${d.update} ${d.step}: ${d.named}, key ${d.fingerprint}, client identity ${d.identity || 'none recorded'}`)}`)]
    : [];
}

// Every cell and list item is text from the incident: escaped, so none opens a block or splits a row (src/render-safe.ts).
const table = (head: string[], rows: string[][]) =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(markdownCell).join(' | ')} |`)].join('\n');
const list = (items: string[], none: string) => (items.length ? items.map((i) => `- ${markdownInline(i)}`).join('\n') : `- ${none}`);
const sourceText = (s: TimeSource) => (s === 'state' ? 'state' : `#${s.eventId} ${s.eventType}`);

export function renderReviewMarkdown(r: Review): string {
  const triage = r.triage === 'not run' ? 'not run' : `${r.triage.agreement}: ${r.triage.note}`;
  const revocationLines = r.impact.revocations.map(
    (v) =>
      `${v.step}${v.dryRun ? ' (dry run, nothing revoked)' : ''}: ${v.sessionsRevoked} session(s) revoked of ${v.sessionsFound} found, ${v.usersChecked} user(s) checked, ${v.usersNotFound} not found, ${v.failures} failure(s)`,
  );
  return [
    `# Post-incident review${r.reviewState.state === 'draft' ? ' (DRAFT)' : ''}: ${markdownInline(r.summary)}`,
    '',
    ...(r.reviewState.state === 'draft'
      ? [`**Draft:** the commander's findings are still coming (completeReview) until ${r.reviewState.until}; the proposed action items are to keep, edit or drop.`, '']
      : r.reviewState.how
        ? [r.reviewState.how === 'finalized' ? `**Final:** finalized by ${markdownInline(r.reviewState.by ?? '?')} at ${r.reviewState.at}.` : `**Final:** the post-incident phase ended at its deadline (${r.reviewState.at}); the review stands as it was.`, '']
        : []),
    table(
      ['field', 'value'],
      [
        ['incident', r.incidentId],
        ['date', r.date],
        ['started', r.startedAt],
        ['closed', r.closedAt ? `${r.closedAt} (${r.closedAs})` : 'still running'],
        ['duration', `${r.duration}${r.closedAt ? '' : ' so far'}`],
        ['status', r.status],
        ['severity', r.severity],
        ['category', r.category],
        ['triage', triage],
        ['reporter', r.reporter],
        ...(r.detection && r.detection.by !== 'manual' ? [['detected', `by ${r.detection.by} at ${r.detection.at}; opened ${r.detection.openedAt}; time to detect ${r.detection.mttd}; ${r.detection.reports} detection report(s)`]] : []),
        ['dry run', r.dryRun ? 'yes: nothing was changed' : 'no'],
      ],
    ),
    '',
    '## Summary',
    '',
    markdownBlock(r.summary),
    '',
    '## Timeline',
    '',
    'Times are the history events\' times (the UI\'s Event History), event id and type beside each; "state" where no event stands for the line.',
    '',
    table(['time (UTC)', 'event', 'step', 'who', 'what'], r.timeline.map((t) => [t.time, sourceText(t.source), t.step, t.actor, t.description])),
    '',
    '## Root cause, trigger, detection',
    '',
    list([`root cause: ${r.cause.rootCause}`, `trigger: ${r.cause.trigger}`, `detection: ${r.cause.detection}`, `resolution: ${r.cause.resolution}`], ''),
    '',
    '## Impact',
    '',
    list(
      [
        `sessions revoked: ${r.impact.sessionsRevoked}`,
        `users affected (sessions ended): ${r.impact.usersAffected}`,
        ...revocationLines.map((l) => `revocation ${l}`),
        ...(r.impact.webhookEventsReplayed !== undefined ? [`webhook events replayed (user reconciliation): ${r.impact.webhookEventsReplayed}`] : []),
        `steps done by hand: ${r.impact.stepsByHand.length ? r.impact.stepsByHand.map((s) => `${s.step} (${s.outcome}${s.by ? ` by ${s.by}` : ''}${s.note ? `: ${s.note}` : ''})`).join('; ') : 'none'}`,
        `open items: ${r.impact.openItems.length ? r.impact.openItems.join('; ') : 'none'}`,
        `data loss: ${r.impact.dataLoss}`,
        `users affected (the commander's count): ${r.impact.usersReportedAffected}`,
        ...(r.impact.keyExposure ? [`key exposure audit: ${r.impact.keyExposure}`] : []),
        ...(r.impact.authBypass
          ? [`minutes of auth bypass: ${r.impact.authBypass.minutes} (on ${r.impact.authBypass.onSince}, ${r.impact.authBypass.offAt ? `off ${r.impact.authBypass.offAt}` : `NOT off: ${r.impact.authBypass.state}`})`]
          : []),
        ...(r.impact.rollback
          ? [`rollback: production rolled back from ${r.impact.rollback.fromDeploymentId} to ${r.impact.rollback.toDeploymentId}${r.impact.rollback.rebuiltFrom ? ` (a new build of ${r.impact.rollback.rebuiltFrom}'s source with today's env)` : ''} at ${r.impact.rollback.at}${r.impact.rollback.failureMinutes !== undefined ? `; the failure lasted about ${r.impact.rollback.failureMinutes} min` : ''}`]
          : []),
      ],
      '',
    ),
    '',
    '## Action items',
    '',
    r.actionItems.some((a) => a.owner)
      ? table(['action item', 'owner', 'due', 'state', 'why'], r.actionItems.map((a) => [a.text, a.owner ?? '-', a.due ?? '-', a.state ?? 'open', a.why]))
      : list(r.actionItems.map((a) => `${r.reviewState.state === 'draft' ? '(proposed) ' : ''}${a.text} — ${a.why}`), 'none derived from what happened'),
    '',
    '## Lessons',
    '',
    list(
      [...r.lessons.wentWell.map((l) => `went well: ${l}`), ...r.lessons.wentWrong.map((l) => `went wrong: ${l}`), ...r.lessons.gotLucky.map((l) => `got lucky: ${l}`)],
      NOT_GIVEN,
    ),
    '',
    '## Who decided',
    '',
    'The person named in each update beside the client identity Temporal recorded for it (`WorkflowExecutionUpdateAccepted` → accepted request → meta.identity).',
    '',
    r.whoDecided.length
      ? r.whoDecided.some((d) => d.person)
        ? table(['time (UTC)', 'event', 'update', 'step', 'named in the update', 'roster person', 'key', 'client identity', 'result'], r.whoDecided.map((d) => [d.time, `#${d.eventId}`, d.update, d.step, d.named, d.person ?? 'not in the roster', d.fingerprint ?? 'unsigned', d.identity, d.result]))
        : table(['time (UTC)', 'event', 'update', 'step', 'named in the update', 'client identity', 'result'], r.whoDecided.map((d) => [d.time, `#${d.eventId}`, d.update, d.step, d.named, d.identity, d.result]))
      : '- nobody sent an update',
    ...identityFlags(r.whoDecided),
    ...sharedIdentities(r.whoDecided),
    ...signedDecisions(r.whoDecided),
    '',
    '## Needs attention (flagged while it ran)',
    '',
    list(r.attention, 'nothing'),
    '',
  ].join('\n');
}
