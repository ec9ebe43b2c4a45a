/**
 * A reader that stops early (`npm run incident -- list | head -1`) closes our stdout: the next write
 * fails with EPIPE, which Node raises as an uncaught error with a stack trace. Every entry point
 * calls this once: a command then exits quietly with status 0, as Unix tools do; a server
 * (`npm start`, the worker, the codec server) keeps serving and drops the output nobody reads.
 */
let installed = false;

export function exitQuietlyWhenOutputCloses(then: 'exit' | 'keep-running' = 'exit'): void {
  if (installed) return;
  installed = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
      if (then === 'exit') process.exit(0);
    });
  }
}
