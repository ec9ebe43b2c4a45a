/**
 * `npm run drill -- <category>|all [--json] [--variant <name>] [--detect]`: game-day drills of the
 * playbooks against the Clerk sandbox (docs/drills.md). Uses a running `npm start` in sandbox mode,
 * or starts what it needs. `--detect` (clerk_outage): the runbook's watch opens the incident
 * (src/drill/detect.ts), nobody starts it.
 * Exit code: 0 every check of every drill passed, 1 a check failed (or the drill could not run),
 * 2 usage error (docs/cli.md).
 */
import { Command } from 'commander';
import { Runtime, DefaultLogger } from '@temporalio/worker';
import { z } from 'zod';
import { INCIDENT_CATEGORIES, type IncidentCategory } from '../domain';
import { DETECTABLE_CATEGORIES, DRILL_DETECT, WatchDetector } from '../drill/detect';
import { openDrillTarget, type DrillVia } from '../drill/environment';
import { formatReports, reportsJson, runDrill, type DrillDetector, type DrillHooks, type DrillReport, type DrillScenario, type DrillTarget } from '../drill/run';
import { SCENARIOS, VARIANTS } from '../drill/scenarios';
import { CliArgumentError, runCli } from './common';

const argumentSchema = z.union([z.enum(INCIDENT_CATEGORIES), z.literal('all')], {
  error: `must be one of ${INCIDENT_CATEGORIES.join(', ')} or all`,
});

/** The categories `arg` names, in the runbook's order for `all`. */
export function drillCategories(arg: unknown): IncidentCategory[] {
  const parsed = argumentSchema.safeParse(arg);
  if (!parsed.success) throw new CliArgumentError(`<category>: ${parsed.error.issues[0]?.message ?? 'invalid'} (got ${JSON.stringify(arg)})`);
  return parsed.data === 'all' ? [...INCIDENT_CATEGORIES] : [parsed.data];
}

/** The scenario `--variant` names: one category, one of its variants. */
export function drillVariant(categories: IncidentCategory[], name: string): DrillScenario {
  const [category] = categories;
  const variants = category && categories.length === 1 ? VARIANTS[category] : undefined;
  const known = Object.keys(variants ?? {});
  const scenario = variants?.[name];
  if (!scenario) throw new CliArgumentError(`--variant: ${categories.length === 1 ? `${category} has ${known.length ? `the variants ${known.join(', ')}` : 'no variants'}` : 'give one category'} (got ${JSON.stringify(name)})`);
  return scenario;
}

const detectSchema = z.tuple([z.enum(DETECTABLE_CATEGORIES)]);
const DETECT_ONLY = `only ${DETECTABLE_CATEGORIES.join(', ')} can be drilled with detection (the watch opening the incident); give that one category`;

/** `--detect`: the categories must be one the watch's drill supports; its detector per category. */
export function drillDetection(categories: IncidentCategory[]): (category: IncidentCategory) => DrillDetector {
  const parsed = detectSchema.safeParse(categories);
  if (!parsed.success) throw new CliArgumentError(`--detect: ${DETECT_ONLY} (got ${categories.join(', ')})`);
  return (category) => new WatchDetector(category, DRILL_DETECT);
}

/** Runs the drills one after the other (they share one sandbox: faults must not overlap). `detect`: who opens each incident instead of the drill. */
export async function runDrills(
  categories: IncidentCategory[],
  target: DrillTarget,
  hooks: DrillHooks = {},
  variant?: DrillScenario,
  detect?: (category: IncidentCategory) => DrillDetector,
): Promise<DrillReport[]> {
  const reports: DrillReport[] = [];
  for (const category of categories) {
    target.log(`[${category}] drill starting${detect ? ' (detection: the watch opens the incident)' : ''}`);
    const report = await runDrill(category, variant ?? SCENARIOS[category], target, hooks, detect?.(category));
    target.log(`[${category}] ${report.passed ? 'passed' : 'FAILED'}`);
    reports.push(report);
  }
  return reports;
}

/** `--via`: updates (default) or slack. */
export function drillVia(arg: unknown): DrillVia {
  if (arg === undefined) return 'updates';
  const parsed = z.enum(['updates', 'slack']).safeParse(arg);
  if (!parsed.success) throw new CliArgumentError(`--via: must be updates or slack (got ${JSON.stringify(arg)})`);
  return parsed.data;
}

export const EXIT_CODES_HELP = `
Exit code:
  0  every check of every drill passed
  1  a check failed, or a drill could not run to the end
  2  usage error (an unknown category or flag, --detect with another category than clerk_outage, --via other than updates or slack)`;

export function buildDrillProgram(): Command {
  return new Command('drill')
    .exitOverride()
    .description('game-day drills: inject a fault in the Clerk sandbox, run the playbook, check the outcome in the sandbox’s own records (docs/drills.md)')
    .argument('<category>', `${INCIDENT_CATEGORIES.join(' | ')} | all`)
    .option('--json', 'print the reports as JSON: [{category, passed, checks, workflowId, steps}]')
    .option('--variant <name>', `another fault of the category's drill (${Object.entries(VARIANTS).flatMap(([c, v]) => Object.keys(v ?? {}).map((n) => `${c}: ${n}`)).join('; ')})`)
    .option('--detect', `no incident is started by hand: the runbook's watch (every ${DRILL_DETECT.intervalMs / 1000} s, ${DRILL_DETECT.consecutive} runs in a row) must open it; reports the time to detect (${DETECTABLE_CATEGORIES.join(', ')})`)
    .option('--via <door>', 'how the approvers decide: updates (as the CLI sends them; default) or slack (clicks in the sandbox\'s emulated Slack, docs/slack.md)')
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError('(add --help for usage)')
    .action(async (arg: string, opts: { json?: boolean; variant?: string; detect?: boolean; via?: string }) => {
      const categories = drillCategories(arg);
      const via = drillVia(opts.via);
      const variant = opts.variant === undefined ? undefined : drillVariant(categories, opts.variant);
      const detect = opts.detect ? drillDetection(categories) : undefined;
      // Progress goes to stderr: stdout is the report (or the JSON).
      const log = (line: string) => console.error(line);
      Runtime.install({ logger: new DefaultLogger(process.env.LOG_LEVEL === 'debug' ? 'DEBUG' : 'WARN') });
      const opened = await openDrillTarget(log, undefined, via);
      let reports: DrillReport[];
      try {
        log(`drills run on ${opened.description}`);
        reports = await runDrills(categories, opened.target, {}, variant, detect);
      } finally {
        await opened.close();
      }
      console.log(opts.json ? reportsJson(reports) : formatReports(reports));
      if (!reports.every((r) => r.passed)) process.exitCode = 1;
    });
}

export async function main(argv: string[]): Promise<void> {
  await buildDrillProgram().parseAsync(argv);
}

if (require.main === module) runCli(() => main(process.argv));
