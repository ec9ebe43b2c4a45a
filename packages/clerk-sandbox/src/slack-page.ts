/**
 * `GET /slack`: the emulated workspace as a page for people (routes/slack.ts) — channels with
 * threads, ephemerals by user, each button a small form that clicks it as the user chosen, each
 * open modal a form that submits it. Every string from a message is the app's (hostile) input:
 * all of it goes through `esc`. Plain HTML, no script.
 */
import type { SlackBlock, SlackButton } from './slack-blocks';
import { inputsOf, type SlackEphemeral, type SlackMessage, type SlackOverview, type SlackUser } from './slack';

// Five replacements; not worth a dependency.
const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

interface Shown {
  ts: string;
  channel: string;
  /** Who may click: everyone for a message, its one viewer for an ephemeral. */
  viewers: SlackUser[];
}

function userSelect(users: SlackUser[], selected: string): string {
  return `<select name="userId" title="click as">${users.map((u) => `<option value="${esc(u.id)}"${u.id === selected ? ' selected' : ''}>${esc(u.name)}</option>`).join('')}</select>`;
}

function buttonForm(b: SlackButton, blockId: string, shown: Shown, as: string): string {
  const hidden = { ts: shown.ts, channel: shown.channel, actionId: b.action_id ?? '', blockId };
  return `<form method="post" action="/slack/ui/click" class="btn">${Object.entries(hidden)
    .map(([k, v]) => `<input type="hidden" name="${k}" value="${esc(v)}">`)
    .join('')}${userSelect(shown.viewers, as)}<button class="${esc(b.style ?? '')}">${esc(b.text.text)}</button></form>`;
}

function element(e: { type: string } & Record<string, unknown>, blockId: string, shown: Shown, as: string): string {
  return e.type === 'button' ? buttonForm(e as SlackButton, blockId, shown, as) : `<span class="el">[${esc(e.type)}]</span>`;
}

function textOf(t: { text: string } | undefined): string {
  return t ? `<div class="txt">${esc(t.text)}</div>` : '';
}

function blocksHtml(blocks: SlackBlock[] | null, shown: Shown, as: string): string {
  return (blocks ?? [])
    .map((b) => {
      const id = b.block_id ?? '';
      switch (b.type) {
        case 'header':
          return `<h4>${esc(b.text.text)}</h4>`;
        case 'divider':
          return '<hr>';
        case 'section':
          return `<div class="section">${textOf(b.text)}${(b.fields ?? []).map((f) => `<div class="field">${esc(f.text)}</div>`).join('')}${b.accessory ? element(b.accessory, id, shown, as) : ''}</div>`;
        case 'context':
          return `<div class="context">${b.elements.map((e) => ('text' in e && typeof e.text === 'string' ? esc(e.text) : `[${esc(e.type)}]`)).join(' · ')}</div>`;
        case 'actions':
          return `<div class="actions">${b.elements.map((e) => element(e, id, shown, as)).join(' ')}</div>`;
        case 'markdown':
          return `<div class="txt">${esc(b.text)}</div>`;
        case 'input':
          return `<div class="context">[input: ${esc(b.label.text)}]</div>`;
        default:
          return `<div class="context">[${esc(b.type)} block]</div>`;
      }
    })
    .join('');
}

function edited(m: { edits: number; history: { by: string }[] }): string {
  return m.edits ? ` <span class="edited" title="${esc(m.history.map((h) => h.by).join(', '))}">(edited ×${m.edits})</span>` : '';
}

function messageHtml(m: SlackMessage, o: SlackOverview, as: string): string {
  const shown = { ts: m.ts, channel: m.channel, viewers: o.settings.users };
  const body = m.deleted ? '<div class="context">(deleted)</div>' : `${m.blocks?.length ? '' : `<div class="txt">${esc(m.text)}</div>`}${blocksHtml(m.blocks, shown, as)}`;
  return `<article id="m${esc(m.ts)}"><header><b>${esc(o.settings.bot.name)}</b> <small>${esc(m.ts)}</small>${edited(m)}</header>${body}</article>`;
}

function ephemeralHtml(e: SlackEphemeral, o: SlackOverview): string {
  const viewer = o.settings.users.find((u) => u.id === e.user) ?? { id: e.user, name: e.user };
  const shown = { ts: e.message_ts, channel: e.channel, viewers: [viewer] };
  const body = e.deleted ? '<div class="context">(deleted)</div>' : `${e.blocks?.length ? '' : `<div class="txt">${esc(e.text)}</div>`}${blocksHtml(e.blocks, shown, viewer.id)}`;
  return `<article class="eph"><header><b>${esc(o.settings.bot.name)}</b> <small>${esc(e.message_ts)}</small> <i>only visible to ${esc(viewer.name)}</i>${edited(e)}</header>${body}</article>`;
}

export function renderSlackPage(o: SlackOverview, opts: { as: string; notice?: string }): string {
  const channels = o.channels
    .map((c) => {
      const messages = c.messages
        .map((m) => `${messageHtml(m, o, opts.as)}${m.replies.length ? `<div class="thread">${m.replies.map((r) => messageHtml(r, o, opts.as)).join('')}</div>` : ''}`)
        .join('');
      const ephemerals = o.ephemerals.filter((e) => e.channel === c.id).map((e) => ephemeralHtml(e, o)).join('');
      return `<section><h2>#${esc(c.name)} <small>${esc(c.id)}</small></h2>${messages || '<p class="context">no messages</p>'}${ephemerals}</section>`;
    })
    .join('');
  const views = o.views
    .filter((v) => v.status === 'open')
    .map((v) => {
      const user = o.settings.users.find((u) => u.id === v.user) ?? { id: v.user, name: v.user };
      const fields = inputsOf(v.view)
        .map((i, n) => `<label>${esc(i.label)}${i.optional ? ' (optional)' : ''}<br>${i.multiline ? `<textarea name="input.${n}"></textarea>` : `<input name="input.${n}">`}</label>`)
        .join('');
      return `<form method="post" action="/slack/ui/submit" class="modal"><h3>${esc(v.view.title.text)} <small>${esc(v.id)}, open for ${esc(user.name)}</small></h3><input type="hidden" name="viewId" value="${esc(v.id)}"><input type="hidden" name="userId" value="${esc(user.id)}">${fields}<button>${esc(v.view.submit?.text ?? 'Submit')}</button></form>`;
    })
    .join('');
  const deliveries = o.deliveries
    .slice(-20)
    .reverse()
    .map((d) => `<tr><td>${esc(d.at)}</td><td>${esc(d.kind)}</td><td>${esc(d.retryNum)}</td><td>${esc(d.status)}</td><td>${esc(d.ms)} ms</td><td>${esc(d.body.slice(0, 120))}</td></tr>`)
    .join('');
  return `<!doctype html><meta charset="utf-8"><title>Slack (SANDBOX)</title>
<style>body{font:14px system-ui,sans-serif;max-width:60em;margin:1em auto}article{border-left:3px solid #ddd;padding:.3em .6em;margin:.5em 0}.eph{border-color:#9cf;background:#f4f9ff}.thread{margin-left:2em}.txt{white-space:pre-wrap}.context,.edited{color:#666;font-size:.9em}form.btn{display:inline}.primary{background:#2a7}.danger{background:#c33;color:#fff}.modal{border:1px solid #999;padding:.6em;margin:.6em 0}.notice{background:#ffe;padding:.4em}</style>
<h1>Slack (SANDBOX) <small>${esc(o.settings.team.domain)} · ${esc(o.settings.team.id)}</small></h1>
${opts.notice ? `<p class="notice">${esc(opts.notice)}</p>` : ''}
${channels}
${views ? `<h2>Open modals</h2>${views}` : ''}
<h2>Deliveries to the app</h2><table><tr><th>at</th><th>kind</th><th>retry</th><th>status</th><th>took</th><th>answer</th></tr>${deliveries}</table>`;
}
