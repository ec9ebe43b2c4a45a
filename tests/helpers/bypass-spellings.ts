/**
 * Hostile spellings of the routes the emergency bypass must keep closed, shared by the decision's
 * unit tests, the sandbox example app's test and the Next.js example's HTTP test: a path that any
 * framework might route to a protected page stays closed in all of them.
 */
import { request } from 'node:http';

/** The protected pages both example apps serve (never on the bypass allowlist). */
export const PROTECTED_ROUTES = ['/app/admin', '/app/billing', '/app/api-keys'] as const;

/** Routes the bypass opens in both apps, spelled plainly. */
export const ALLOWED_ROUTES = ['/app/dashboard'] as const;

const enc = (s: string) => [...s].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');

/** Raw request paths (sent verbatim, not through a URL parser) that name `route` or try to reach it. */
export function hostileSpellings(route: string): string[] {
  const [, first = '', last = ''] = route.split('/');
  const head = `/${first}`;
  const up = (s: string) => s.toUpperCase();
  const l0 = last[0] ?? '';
  const rest = last.slice(1);
  return [
    route,
    // percent-encoding: one letter, the whole segment, upper/lower hex, double and triple encoding
    `${head}/${enc(l0)}${rest}`,
    `${head}/${enc(last)}`,
    `${head}/${enc(l0).toUpperCase()}${rest}`,
    `${head}/%25${enc(l0).slice(1)}${rest}`,
    `${head}/%2525${enc(l0).slice(1)}${rest}`,
    `/${enc(first)}/${last}`,
    `${enc(head)}/${last}`,
    // encoded separators
    `${head}%2f${last}`,
    `${head}%2F${last}`,
    `${head}%252f${last}`,
    `${head}%5c${last}`,
    `${head}\\${last}`,
    // case
    up(route),
    `${head}/${up(l0)}${rest}`,
    // duplicate slashes and dot segments (plain, encoded, double encoded, with backslashes)
    `/${route}`,
    `${head}//${last}`,
    `//${first}//${last}//`,
    `${head}/./${last}`,
    `${head}/dashboard/../${last}`,
    `${head}/dashboard/%2e%2e/${last}`,
    `${head}/dashboard/%2E%2E/${last}`,
    `${head}/dashboard/.%2e/${last}`,
    `${head}/dashboard/%252e%252e/${last}`,
    `${head}/dashboard%2f..%2f${last}`,
    `${head}/dashboard/..%2f${last}`,
    `${head}/dashboard/..%5c${last}`,
    `${head}/dashboard\\..\\${last}`,
    `${head}/dashboard/..;/${last}`,
    `/x/../${first}/${last}`,
    // trailing characters
    `${route}/`,
    `${route}//`,
    `${route}.`,
    `${route}..`,
    `${route}/.`,
    `${route}%2e`,
    `${route}%20`,
    `${route}%09`,
    `${route};`,
    `${route};jsessionid=1`,
    `${route}%3b`,
    `${route}%23`,
    `${route}%3f`,
    `${route}?tab=1`,
    `${route}#frag`,
    `${route}%00`,
    `${route}/%2e`,
    // Unicode tricks: full-width letter, zero-width space, bidi override, combining dot, ligature-free lookalike
    `${head}/%EF%BD%${(0x81 + l0.charCodeAt(0) - 97).toString(16).toUpperCase()}${rest}`,
    `${route}%E2%80%8B`,
    `${head}/%E2%80%AE${last}`,
    `${head}/${l0}%CC%87${rest}`,
    // overlong UTF-8 for "/" and "." (invalid: never decodes to a route)
    `${head}%c0%af${last}`,
    `${head}/dashboard/%c0%ae%c0%ae/${last}`,
  ];
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** GET `rawPath` exactly as written (fetch would resolve dot segments and re-encode first). */
export function rawGet(baseUrl: string, rawPath: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path: rawPath, method: 'GET', headers, timeout: 30_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${rawPath}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Every hostile spelling of every protected route, as [route, rawPath] rows. */
export const HOSTILE_ROWS: readonly (readonly [string, string])[] = PROTECTED_ROUTES.flatMap((route) => hostileSpellings(route).map((raw) => [route, raw] as const));
