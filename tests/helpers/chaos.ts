/**
 * The crash suite's chaos: a sandbox-mode worker in a child process (drill-worker.ts) that is
 * SIGKILLed at seeded random moments and started again, and a Temporal dev server that can be
 * stopped and started again on the same SQLite file. Every kill is recorded with the playbook it
 * hit, so a failure names the seed and the kills that led to it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { DrillWorkerConfig } from './drill-worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long a new worker may take to poll (it waits up to 60 s for a restarting server itself). */
const READY_TIMEOUT_MS = 120_000;

/** A reproducible stream of numbers in [0, 1) from a seed (sha256 of `seed:i`). */
export class SeededRandom {
  private i = 0;
  constructor(readonly seed: string) {}

  next(): number {
    const hex = createHash('sha256').update(`${this.seed}:${this.i++}`).digest('hex').slice(0, 12);
    return parseInt(hex, 16) / 2 ** 48;
  }

  between(min: number, max: number): number {
    return Math.round(min + this.next() * (max - min));
  }
}

export interface Kill {
  playbook: string;
  /** How long after the worker was ready. */
  afterMs: number;
  at: string;
}

export class ChaosWorker {
  readonly kills: Kill[] = [];
  readonly restarts: string[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readyAt = 0;
  private generation = 0;
  private stopped = false;
  private killing = false;
  private readonly log: WriteStream;

  constructor(
    private readonly config: Omit<DrillWorkerConfig, 'identity'>,
    private readonly random: SeededRandom,
    readonly logFile: string,
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' });
  }

  /** Starts a worker and resolves once it polls. */
  async start(): Promise<void> {
    const identity = `chaos-worker-${++this.generation}`;
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'drill-worker.ts'), JSON.stringify({ ...this.config, identity })], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr?.pipe(this.log, { end: false });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let abandoned = false;
    // A worker that dies on its own (e.g. the server gone too long) is started again, as a supervisor would.
    child.once('exit', (code, signal) => {
      if (this.child === child && !abandoned && !this.killing && !this.stopped) {
        this.restarts.push(`${identity} exited on its own (${code ?? signal}): started again`);
        void this.startAgain().catch((err: unknown) => this.restarts.push(`restart failed: ${String(err)}`));
      }
    });
    // A worker that never gets ready would stall the kills (and the playbook) for good: it is
    // killed and the start fails, so startAgain() tries a new one.
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`${identity} exited with ${code} before it was ready; see ${this.logFile}`)));
        createInterface({ input: child.stdout! }).on('line', (line) => {
          if (line === 'ready') resolve();
        });
        timer = setTimeout(() => {
          abandoned = true;
          child.kill('SIGKILL');
          reject(new Error(`${identity} not ready after ${READY_TIMEOUT_MS} ms: killed; see ${this.logFile}`));
        }, READY_TIMEOUT_MS);
      });
    } finally {
      clearTimeout(timer);
    }
    this.readyAt = Date.now();
  }

  /** SIGKILL now, then a new worker. */
  async killAndRestart(playbook: string): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.killing = true;
    this.kills.push({ playbook, afterMs: Date.now() - this.readyAt, at: new Date().toISOString() });
    child.kill('SIGKILL');
    await this.exited;
    this.killing = false;
    if (!this.stopped) await this.startAgain();
  }

  /** A worker started while the server is away may give up: it is started again, a few times. */
  private async startAgain(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.start();
      } catch (err) {
        this.restarts.push(`start failed (${String(err)}): attempt ${attempt}`);
        if (attempt >= 5 || this.stopped) throw err;
        await sleep(1000);
      }
    }
  }

  /**
   * Kills the worker `count` times while `playbook` runs, each `minMs`–`maxMs` (seeded) after the
   * worker was ready. `stop()` on the result ends it early (the playbook is over).
   */
  rampage(playbook: string, count: number, minMs: number, maxMs: number): { stop: () => Promise<number> } {
    let over = false;
    let wake: (() => void) | undefined;
    const done = (async () => {
      let n = 0;
      while (n < count && !over) {
        const delay = this.random.between(minMs, maxMs);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, delay);
        });
        if (over) break;
        await this.killAndRestart(playbook).catch((err: unknown) => this.restarts.push(`after a kill in ${playbook}: ${String(err)}`));
        n++;
      }
      return n;
    })();
    return {
      stop: async () => {
        over = true;
        wake?.();
        return done;
      },
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.child?.kill('SIGKILL');
    await this.exited;
    this.log.end();
  }
}
