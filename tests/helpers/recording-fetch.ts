/** A fetch that records what an adapter sends (method, URL, lower-cased headers, JSON body), then sends it. */
export interface Sent {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: unknown;
}

export function recordingFetch(log: Sent[]): typeof fetch {
  return async (input, init) => {
    const headers = Object.fromEntries(Object.entries((init?.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
    log.push({ method: init?.method ?? 'GET', url: new URL(String(input)), headers, body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined });
    return fetch(input, init);
  };
}
