/**
 * `npm install` hook: make sure the Temporal CLI and the time-skipping test server are available
 * (env var, PATH, or .tools/), obtaining them when not. SKIP_TEMPORAL_PROVISION=1 skips it (the
 * worker's container image needs neither).
 */
async function main(): Promise<void> {
  if (process.env.SKIP_TEMPORAL_PROVISION === '1') {
    process.stderr.write('[provision] SKIP_TEMPORAL_PROVISION=1: not provisioning Temporal binaries\n');
    return;
  }
  // Imported only now, so an image built with the skip flag needs nothing else of the source tree.
  const { ensureBinary, ProvisionError, TEMPORAL_CLI, TEMPORAL_TEST_SERVER } = await import('../src/temporal/provision');
  let failed = false;
  for (const spec of [TEMPORAL_CLI, TEMPORAL_TEST_SERVER]) {
    try {
      ensureBinary(spec);
    } catch (err) {
      if (!(err instanceof ProvisionError)) throw err;
      // Do not fail `npm install` itself: `npm start` can still use a server at TEMPORAL_ADDRESS.
      process.stderr.write(`[provision] ${err.message}\n`);
      failed = true;
    }
  }
  if (failed) process.stderr.write('[provision] continuing without them; `npm start` and `npm test` say what is missing\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`[provision] ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
