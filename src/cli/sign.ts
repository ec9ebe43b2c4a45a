/**
 * Signing decisions from a terminal (docs/signed-approvals.md): `approve|reject … --sign <key |
 * agent>` and `sign`, which prints the one JSON object to paste into the UI's Send an Update.
 * Signatures are made by OpenSSH itself (`ssh-keygen -Y sign`): with a private key file, with a
 * public key file whose private half is in ssh-agent, or with `agent` (the approver's registered
 * key, found among the agent's keys).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Command } from 'commander';
import { z } from 'zod';
import { describeFlagIssues, CliArgumentError, existingWorkflow } from './common';
import { approveRequestSchema, getIncidentState, incidentWorkflow, rejectRequestSchema, type IncidentState } from '../workflows/incident';
import { decisionStatement, keysOf, parseAllowedSigners, SIGNATURE_NAMESPACE } from '../signing/sshsig';
import { resolvePerson } from '../roster/resolve';

/** Refusal to sign: no ssh-keygen, no key, no agent, or an incident that signs nothing. Exit code 1. */
export class SigningFailed extends Error {
  override readonly name = 'SigningFailed';
}

/** `--sign` / `--key`: a key file, or `agent`. */
export const keySpecSchema = z.string().trim().min(1, 'name a key file (e.g. ~/.ssh/id_ed25519) or agent').max(4096);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], input: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new SigningFailed(`${command} not found: signed approvals need OpenSSH 8.1 or later on PATH`) : err),
    );
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    // A command may exit without reading its input (ssh-add -L, a refused key): EPIPE on stdin is
    // not the failure; its exit code and stderr say what happened.
    child.stdin.on('error', () => undefined);
    if (input) child.stdin.end(input);
    else child.stdin.end();
  });
}

const lastLine = (text: string) => text.trim().split('\n').at(-1) ?? '';

/** The agent's keys (`ssh-add -L`): one `type base64 comment` line each. */
async function agentKeys(flag: string): Promise<string[]> {
  if (!process.env.SSH_AUTH_SOCK) throw new SigningFailed(`${flag} agent: SSH_AUTH_SOCK is not set (is ssh-agent running? eval "$(ssh-agent)" && ssh-add)`);
  const r = await run('ssh-add', ['-L'], '');
  if (r.code !== 0) throw new SigningFailed(`${flag} agent: ssh-add -L failed: ${lastLine(r.stdout + r.stderr) || `exit ${r.code}`}`);
  return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('ssh-'));
}

/**
 * The agent key that may sign for `approver` in this incident's registry (an ed25519 key whose
 * fingerprint the registry lists for them), as a public key line.
 */
async function agentKeyFor(approver: string, state: IncidentState, flag: string): Promise<string> {
  const person = state.roster ? resolvePerson(state.roster.roster, approver) : undefined;
  const keys = person ? (person.ok ? person.person.keys : []) : keysOf(state.signing?.signers ?? [], approver);
  const registered = new Set(keys.map((k) => k.fingerprint));
  const agent = await agentKeys(flag);
  const { signers } = parseAllowedSigners(agent.map((k) => `${approver} ${k}`).join('\n'));
  const match = signers.find((s) => s.keyType === 'ssh-ed25519' && registered.has(s.fingerprint));
  if (!match) {
    throw new SigningFailed(
      `${flag} agent: none of the agent's ${agent.length} key(s) is ${approver}'s in the approver registry (${[...registered].join(', ') || 'no key registered'}); ssh-add your key, or pass ${flag} <key file>`,
    );
  }
  return `ssh-ed25519 ${match.publicKey}`;
}

/**
 * Sign `message` in our namespace with `ssh-keygen -Y sign`. `keyFile` is a private key file, or a
 * public key file (ssh-keygen then signs through the agent).
 */
export async function sshSign(message: string, keyFile: string): Promise<string> {
  const r = await run('ssh-keygen', ['-Y', 'sign', '-n', SIGNATURE_NAMESPACE, '-f', keyFile], message);
  if (r.code !== 0 || !r.stdout.includes('BEGIN SSH SIGNATURE')) {
    throw new SigningFailed(`ssh-keygen -Y sign -f ${keyFile} failed: ${lastLine(r.stderr) || `exit ${r.code}`}`);
  }
  return r.stdout.trim();
}

export interface DecisionToSign {
  /** approve or reject a gate; with a roster, any action of its policy (request, confirm, provide_key…). */
  decision: string;
  step: string;
  approver: string;
  /** The comment (approve) or reason (reject), as the workflow will see it ('' when none); other actions: `actionText` of the request. */
  text: string;
  /** Not a gate decision: the signature answers the incident's roster nonce, not a pending request's. */
  action?: true;
}

/** The signature and nonce a decision carries: the incident's pending request, its run id, and the key. */
export async function signDecision(handle: WorkflowHandle, d: DecisionToSign, keySpec: string, flag = '--sign'): Promise<{ signature: string; nonce: string }> {
  const [{ runId }, state] = await Promise.all([handle.describe(), handle.query(getIncidentState)]);
  if (!state.signing && !state.roster) throw new SigningFailed(`${handle.workflowId} has neither a roster nor an approver registry (its worker had no ROSTER_FILE or APPROVER_ALLOWED_SIGNERS when it started): send it without --sign`);
  let nonce: string;
  if (d.action) {
    if (!state.roster) throw new SigningFailed(`${handle.workflowId} has no roster: only approvals and rejections are signed there; send it without --sign`);
    nonce = state.roster.nonce;
  } else {
    const pending = state.pendingApprovals.find((p) => p.step === d.step);
    if (!pending?.nonce) {
      const waiting = state.pendingApprovals.map((p) => p.step).join(', ') || 'none';
      throw new SigningFailed(`${d.step} is not pending in ${handle.workflowId} (pending: ${waiting}): there is no request to sign`);
    }
    nonce = pending.nonce;
  }
  const message = decisionStatement({ workflowId: handle.workflowId, runId, step: d.step, decision: d.decision, reason: d.text, approver: d.approver, nonce });
  let signature: string;
  if (keySpec === 'agent') {
    const dir = await mkdtemp(join(tmpdir(), 'incident-sign-'));
    try {
      const pub = join(dir, 'key.pub');
      await writeFile(pub, `${await agentKeyFor(d.approver, state, flag)}\n`);
      signature = await sshSign(message, pub);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  } else {
    const file = keySpec.replace(/^~(?=\/)/, process.env.HOME ?? '~');
    await readFile(file).catch((err: unknown) => {
      throw new SigningFailed(`${flag} ${keySpec}: cannot read the key file: ${err instanceof Error ? err.message : String(err)}`);
    });
    signature = await sshSign(message, file);
  }
  return { signature, nonce };
}

const signFlagsSchema = z.object({ decision: z.enum(['approve', 'reject'], { error: 'must be approve or reject' }), key: keySpecSchema });

/**
 * `sign <id> approve|reject --step … --approver … [--comment|--reason] --key <key | agent>`: the
 * signed update as one JSON object, for the UI's Send an Update dialog (update named on stderr).
 */
export function addSignCommand(program: Command, connect: <T>(fn: (client: Client) => Promise<T>) => Promise<T>, example: string): void {
  program
    .command('sign')
    .description('sign a decision with your SSH key and print the one JSON object to paste into the UI (Send an Update)')
    .argument('<workflowId>')
    .argument('<decision>', 'approve or reject')
    .requiredOption('--step <step>', 'the pending step')
    .requiredOption('--approver <name>', 'who decides (your principal in the approver registry)')
    .option('--comment <text>', 'approve: why, for the timeline')
    .option('--reason <text>', 'reject: why not (required)')
    .requiredOption('--key <key file | agent>', 'your SSH key: a private key file, a public key file whose key is in ssh-agent, or agent')
    .addHelpText('after', example)
    .action(async (workflowId: string, decision: string, opts: Record<string, unknown>) => {
      const flags = signFlagsSchema.safeParse({ decision, key: opts.key });
      if (!flags.success) throw new CliArgumentError(describeFlagIssues(flags.error, { decision: '<decision>' }));
      const approve = flags.data.decision === 'approve';
      if (approve && opts.reason !== undefined) throw new CliArgumentError('--reason: only for reject (an approval takes --comment)');
      if (!approve && opts.comment !== undefined) throw new CliArgumentError('--comment: only for approve (a rejection takes --reason)');
      const raw = { step: opts.step, approver: opts.approver, ...(approve ? (opts.comment !== undefined ? { comment: opts.comment } : {}) : { reason: opts.reason }) };
      const parsed = (approve ? approveRequestSchema : rejectRequestSchema).safeParse(raw);
      if (!parsed.success) throw new CliArgumentError(describeFlagIssues(parsed.error));
      const req = parsed.data as { step: string; approver: string; comment?: string; reason?: string };
      await connect(async (client) => {
        const handle = await existingWorkflow(client, workflowId.trim(), incidentWorkflow.name);
        const text = (approve ? req.comment : req.reason) ?? '';
        const signed = await signDecision(handle, { decision: flags.data.decision, step: req.step, approver: req.approver, text }, flags.data.key, '--key');
        console.log(JSON.stringify({ ...req, ...signed }));
        console.error(`paste it into the UI: ${workflowId} → More Actions → Send an Update → ${approve ? 'approveStep' : 'rejectStep'}`);
      });
    });
}
