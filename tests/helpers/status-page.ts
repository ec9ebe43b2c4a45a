/** A Statuspage v2 endpoint (status.json and summary.json) on loopback whose indicator and stalls the test controls. */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StatusIndicator } from '../../src/domain';

export interface FakeStatusPage {
  url: string;
  indicator: StatusIndicator;
  /** Requests answered so far. */
  hits: number;
  /** Requests held by `stallNext` right now. */
  readonly stalled: number;
  /** Hold the next N requests until `release()` is called. */
  stallNext(n: number): void;
  release(): void;
  close(): Promise<void>;
}

export async function startStatusPage(initial: StatusIndicator = 'none'): Promise<FakeStatusPage> {
  const stalled: ServerResponse[] = [];
  let toStall = 0;
  const page: FakeStatusPage = {
    url: '',
    indicator: initial,
    hits: 0,
    get stalled() {
      return stalled.length;
    },
    stallNext(n) {
      toStall = n;
    },
    release() {
      for (const res of stalled.splice(0)) res.destroy();
    },
    close: async () => {
      page.release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((req, res) => {
    if (req.url !== '/api/v2/status.json' && req.url !== '/api/v2/summary.json') {
      res.writeHead(404).end();
      return;
    }
    if (toStall > 0) {
      toStall -= 1;
      stalled.push(res);
      return;
    }
    page.hits += 1;
    const description = page.indicator === 'none' ? 'All Systems Operational' : 'Partial System Outage';
    res.writeHead(200, { 'content-type': 'application/json' });
    const components = [{ name: 'Backend API', status: page.indicator === 'none' ? 'operational' : 'major_outage' }];
    res.end(JSON.stringify({ page: { id: 'test', name: 'Clerk' }, status: { indicator: page.indicator, description }, components }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  page.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return page;
}
