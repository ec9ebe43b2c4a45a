/**
 * Block Kit as the sandbox's Slack checks it (slack.ts): the blocks and elements the runbook may
 * send, with the limits of Slack's Block Kit reference (docs.slack.dev/reference/block-kit), as zod
 * schemas. A refusal lists each problem as Slack's `response_metadata.messages` do:
 * `[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]`.
 * Unknown fields pass (Slack adds its own, and a stricter sandbox would only reject real apps).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';

export const BLOCK_LIMITS = {
  blocksPerMessage: 50,
  blocksPerView: 100,
  sectionText: 3000,
  sectionField: 2000,
  sectionFields: 10,
  headerText: 150,
  buttonText: 75,
  buttonValue: 2000,
  buttonUrl: 3000,
  actionId: 255,
  blockId: 255,
  actionsElements: 25,
  contextElements: 10,
  inputLabel: 2000,
  markdownText: 12_000,
  viewTitle: 24,
  privateMetadata: 3000,
  callbackId: 255,
} as const;

const str = (max: number) => z.string().min(1, 'must be more than 0 characters').max(max, `must be less than ${max + 1} characters`);
const plain = (max: number) => z.looseObject({ type: z.literal('plain_text'), text: str(max), emoji: z.boolean().optional() });
const anyText = (max: number) => z.looseObject({ type: z.enum(['plain_text', 'mrkdwn']), text: str(max), emoji: z.boolean().optional(), verbatim: z.boolean().optional() });
const items = (max: number) => `must be less than ${max + 1} items`;
const style = z.enum(['primary', 'danger']);

const actionId = str(BLOCK_LIMITS.actionId);
const confirm = z.looseObject({ title: plain(100), text: anyText(300), confirm: plain(30), deny: plain(30), style: style.optional() });
const button = z.looseObject({
  type: z.literal('button'),
  text: plain(BLOCK_LIMITS.buttonText),
  action_id: actionId.optional(),
  value: str(BLOCK_LIMITS.buttonValue).optional(),
  url: str(BLOCK_LIMITS.buttonUrl).optional(),
  style: style.optional(),
  confirm: confirm.optional(),
  accessibility_label: str(75).optional(),
});
const plainTextInput = z.looseObject({
  type: z.literal('plain_text_input'),
  action_id: actionId.optional(),
  initial_value: z.string().max(3000).optional(),
  multiline: z.boolean().optional(),
  min_length: z.number().int().min(0).max(3000).optional(),
  max_length: z.number().int().min(1).max(3000).optional(),
  placeholder: plain(150).optional(),
});
const OTHER_ELEMENTS = [
  'static_select', 'multi_static_select', 'external_select', 'multi_external_select', 'users_select', 'multi_users_select',
  'conversations_select', 'multi_conversations_select', 'channels_select', 'multi_channels_select', 'overflow', 'datepicker',
  'timepicker', 'datetimepicker', 'checkboxes', 'radio_buttons', 'email_text_input', 'number_input', 'url_text_input',
  'rich_text_input', 'file_input', 'workflow_button',
] as const;
const otherElement = z.looseObject({ type: z.enum(OTHER_ELEMENTS), action_id: actionId.optional() });
const interactive = z.discriminatedUnion('type', [button, plainTextInput, otherElement]);
const imageElement = z.looseObject({ type: z.literal('image'), image_url: str(3000).optional(), alt_text: str(2000) });

const blockId = str(BLOCK_LIMITS.blockId).optional();
const block = z.discriminatedUnion('type', [
  z
    .looseObject({
      type: z.literal('section'),
      block_id: blockId,
      text: anyText(BLOCK_LIMITS.sectionText).optional(),
      fields: z.array(anyText(BLOCK_LIMITS.sectionField)).min(1).max(BLOCK_LIMITS.sectionFields, items(BLOCK_LIMITS.sectionFields)).optional(),
      accessory: z.union([interactive, imageElement]).optional(),
    })
    .refine((b) => b.text !== undefined || b.fields !== undefined, { message: 'must provide text or fields', path: ['text'] }),
  z.looseObject({ type: z.literal('header'), block_id: blockId, text: plain(BLOCK_LIMITS.headerText) }),
  z.looseObject({ type: z.literal('divider'), block_id: blockId }),
  z.looseObject({ type: z.literal('context'), block_id: blockId, elements: z.array(z.union([anyText(3000), imageElement])).min(1).max(BLOCK_LIMITS.contextElements, items(BLOCK_LIMITS.contextElements)) }),
  z.looseObject({ type: z.literal('actions'), block_id: blockId, elements: z.array(interactive).min(1).max(BLOCK_LIMITS.actionsElements, items(BLOCK_LIMITS.actionsElements)) }),
  z.looseObject({ type: z.literal('input'), block_id: blockId, label: plain(BLOCK_LIMITS.inputLabel), element: interactive, hint: plain(2000).optional(), optional: z.boolean().optional(), dispatch_action: z.boolean().optional() }),
  z.looseObject({ type: z.literal('image'), block_id: blockId, image_url: str(3000).optional(), alt_text: str(2000), title: plain(2000).optional() }),
  z.looseObject({ type: z.literal('markdown'), block_id: blockId, text: str(BLOCK_LIMITS.markdownText) }),
  z.looseObject({ type: z.enum(['rich_text', 'video', 'file', 'context_actions']), block_id: blockId }),
]);

export type SlackButton = z.output<typeof button>;
export type SlackBlock = z.output<typeof block>;

const blockList = (max: number) =>
  z
    .array(block)
    .max(max, items(max))
    .superRefine((blocks, ctx) => {
      const seen = new Set<string>();
      blocks.forEach((b, i) => {
        if (b.block_id === undefined) return;
        if (seen.has(b.block_id)) ctx.addIssue({ code: 'custom', path: [i, 'block_id'], message: `block_id "${b.block_id}" is already used in this message` });
        seen.add(b.block_id);
      });
    });
export const messageBlocksSchema = blockList(BLOCK_LIMITS.blocksPerMessage);

export const modalViewSchema = z
  .looseObject({
    type: z.literal('modal'),
    title: plain(BLOCK_LIMITS.viewTitle),
    blocks: blockList(BLOCK_LIMITS.blocksPerView),
    close: plain(BLOCK_LIMITS.viewTitle).optional(),
    submit: plain(BLOCK_LIMITS.viewTitle).optional(),
    private_metadata: z.string().max(BLOCK_LIMITS.privateMetadata, `must be less than ${BLOCK_LIMITS.privateMetadata + 1} characters`).optional(),
    callback_id: z.string().max(BLOCK_LIMITS.callbackId).optional(),
    external_id: str(255).optional(),
    clear_on_close: z.boolean().optional(),
    notify_on_close: z.boolean().optional(),
  })
  .refine((v) => v.submit !== undefined || !v.blocks.some((b) => b.type === 'input'), { message: 'submit is required when blocks contain an input block', path: ['submit'] });
export type ModalView = z.output<typeof modalViewSchema>;

/** zod's issues as Slack words them in `response_metadata.messages`. */
export function slackMessages(error: z.ZodError, root: string): string[] {
  return error.issues.map((issue) => {
    const pointer = `/${[root, ...issue.path.map(String)].filter(Boolean).join('/')}`;
    const missing = issue.code === 'invalid_type' && issue.message.endsWith('received undefined');
    return `[ERROR] ${missing ? `missing required field: ${String(issue.path.at(-1) ?? root)}` : issue.message} [json-pointer:${pointer}]`;
  });
}

/** Slack fills in a `block_id` for each block and an `action_id` for each element that has none; so does the sandbox. */
export function withIds<T extends SlackBlock>(blocks: readonly T[]): T[] {
  const id = () => randomBytes(4).toString('base64url').slice(0, 5);
  const element = (e: Record<string, unknown>) => ('action_id' in e || e.type === 'image' || e.type === 'mrkdwn' || e.type === 'plain_text' ? e : { ...e, action_id: id() });
  return blocks.map((b) => {
    const out: Record<string, unknown> = { ...b, block_id: b.block_id ?? id() };
    if (b.type === 'actions') out.elements = b.elements.map((e) => element(e));
    if (b.type === 'input') out.element = element(b.element);
    if (b.type === 'section' && b.accessory) out.accessory = element(b.accessory);
    return out as T;
  });
}

/** Every button a person sees on the blocks, with the block it sits in. */
export function buttonsOf(blocks: readonly SlackBlock[] | null): { blockId: string; button: SlackButton }[] {
  const found: { blockId: string; button: SlackButton }[] = [];
  for (const b of blocks ?? []) {
    const blockId = b.block_id ?? '';
    if (b.type === 'actions') for (const e of b.elements) if (e.type === 'button') found.push({ blockId, button: e });
    if (b.type === 'section' && b.accessory?.type === 'button') found.push({ blockId, button: b.accessory });
  }
  return found;
}
