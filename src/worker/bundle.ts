/**
 * The workflow bundle, built one way for everyone: `npm run build` writes it to
 * `dist/workflow-bundle.js` for the production worker, and the tests' global setup builds the
 * same for the replay tests and every test worker. A worker started from `dist/` loads it
 * (`workflowBundle: { codePath }`) instead of bundling at start, which is most of a tsx worker's
 * start-up time (bench/worker-start.ts).
 *
 * Run: `tsx src/worker/bundle.ts <out file>` (what `npm run build` does).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

// A path, not require.resolve: the source is TypeScript (run by tsx), which Node's resolver does
// not know. Compiled (dist/) without a prebuilt bundle, the compiled workflows are bundled instead.
const WORKFLOWS_TS = join(__dirname, '..', 'workflows', 'index.ts');
export const WORKFLOWS_PATH = existsSync(WORKFLOWS_TS) ? WORKFLOWS_TS : join(__dirname, '..', 'workflows', 'index.js');

/** Where `npm run build` puts the bundle, relative to the compiled worker (dist/worker/ → dist/). */
export const PREBUILT_BUNDLE_PATH = join(__dirname, '..', 'workflow-bundle.js');

const noop = () => undefined;
/** webpack's progress lines are noise; its errors are not. */
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error };

/** Bundles `src/workflows` (from the TypeScript source) into `outFile`; returns its path. */
export async function buildWorkflowBundle(outFile: string): Promise<string> {
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, code);
  return outFile;
}

/** The prebuilt bundle next to the compiled worker, if this process runs from `dist/`; else undefined (bundle at start). */
export function prebuiltWorkflowBundle(path: string = PREBUILT_BUNDLE_PATH): { codePath: string } | undefined {
  return existsSync(path) ? { codePath: path } : undefined;
}

if (require.main === module) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: tsx src/worker/bundle.ts <out file>');
    process.exit(2);
  }
  buildWorkflowBundle(resolve(out)).then(
    (path) => console.log(`workflow bundle written to ${path}`),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
