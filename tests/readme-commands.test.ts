/**
 * The README's and docs' commands work as written: every `npm run <script>` names a script of
 * package.json, and every `npm run incident|revoke|triage -- <command> --flag` names a command
 * and flags the CLI really has. Catches a renamed flag or command the docs still show.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram as buildIncidentProgram } from '../src/cli/incident';
import { buildProgram as buildRevokeProgram } from '../src/cli/revoke-sessions';
import { buildProgram as buildReconcileProgram } from '../src/cli/reconcile';
import { buildTriageProgram } from '../src/cli/triage';
import { buildDrillProgram } from '../src/cli/drill';

const root = join(__dirname, '..');
const docs = ['README.md', 'packages/clerk-sandbox/README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];
const scripts = Object.keys((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);

/** Every `npm run …` command in a document, one logical line each (backslash continuations joined). */
function commands(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8').replace(/\\\n\s*/g, ' ');
  // A `# comment` after a command is prose, not arguments.
  return [...text.matchAll(/npm run ([a-z][\w:-]*)([^\n`|#]*)/g)].map((m) => `${m[1]}${m[2] ?? ''}`.trim());
}

const programs: Record<string, () => Command> = {
  incident: buildIncidentProgram,
  revoke: buildRevokeProgram,
  reconcile: buildReconcileProgram,
  triage: () => buildTriageProgram(),
  drill: buildDrillProgram,
};

/** The flags a command (or, for triage, the program itself) accepts. */
function flagsOf(command: Command): Set<string> {
  return new Set(command.options.flatMap((o) => [o.long, o.short]).filter((f): f is string => Boolean(f)));
}

const all = docs.flatMap((file) => commands(file).map((command) => ({ file, command })));

describe('commands in the README and docs', () => {
  it('finds the commands to check', () => {
    expect(all.length).toBeGreaterThan(20);
  });

  it.each(all)('$file: npm run $command', ({ command }) => {
    const [script, ...rest] = command.split(/\s+/);
    expect(scripts, `npm run ${script}`).toContain(script);
    const build = programs[script ?? ''];
    if (!build || rest[0] !== '--') return;
    const args = rest.slice(1);
    const program = build();
    let target: Command = program;
    if (program.commands.length && args[0] && !args[0].startsWith('-')) {
      const sub = program.commands.find((c) => c.name() === args[0]);
      expect(sub, `${script} has a command "${args[0]}"`).toBeDefined();
      target = sub as Command;
    }
    const known = flagsOf(target);
    for (const flag of args.filter((a) => /^--[a-z]/.test(a)).map((a) => (a.split('=')[0] as string).replace(/[,;.)]+$/, ''))) {
      if (flag === '--help') continue;
      expect(known, `${command}: ${flag}`).toContain(flag);
    }
  });
});
