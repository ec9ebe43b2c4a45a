/**
 * Next.js 16 request interception (`proxy.ts`, formerly `middleware.ts`) with Clerk and a SAFE
 * emergency auth bypass (see README.md). The flag is honoured only while it is set, well formed,
 * unexpired and within this app's maximum; it then opens ONLY the allowlisted routes of
 * `bypass-decision.ts` (marked `X-Auth-Bypass: true`, one log line each). Every other route, and
 * every request without a usable flag, goes through `clerkMiddleware()` as usual.
 *
 * The flag is the Edge Config item CLERK_AUTH_BYPASS when EDGE_CONFIG is set (live within seconds),
 * else the env var of the same name (live after a redeploy).
 */
import { clerkMiddleware, createRouteMatcher } from '@clerk/nextjs/server';
import { get } from '@vercel/edge-config';
import { NextResponse, type NextFetchEvent, type NextRequest } from 'next/server';
import { BYPASS_HEADER, decideBypass } from './bypass-decision';

const FLAG = 'CLERK_AUTH_BYPASS';
const isPublicRoute = createRouteMatcher(['/', '/sign-in(.*)', '/sign-up(.*)']);

const withClerk = clerkMiddleware(
  async (auth, req) => {
    if (!isPublicRoute(req)) await auth.protect();
  },
  // Read at run time: NEXT_PUBLIC_* is inlined at build time, so one build can serve any instance.
  () => ({ publishableKey: process.env.CLERK_PUBLISHABLE_KEY || process.env.NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY }),
);

async function readFlag(): Promise<unknown> {
  if (process.env.EDGE_CONFIG) {
    try {
      const item = await get(FLAG);
      if (item !== undefined) return item;
    } catch (e) {
      console.error(JSON.stringify({ msg: 'auth bypass: Edge Config unreadable, using the env var', error: e instanceof Error ? e.message : String(e) }));
    }
  }
  return process.env[FLAG];
}

export default async function proxy(req: NextRequest, event: NextFetchEvent) {
  // The raw path as requested (`nextUrl.pathname` may already be partly normalised): the decision normalises it itself.
  const rawPath = new URL(req.url).pathname;
  const decision = decideBypass({ flag: await readFlag(), path: rawPath, now: Date.now() });
  // Pages learn of the bypass from this request header, never from the client's own.
  req.headers.delete(BYPASS_HEADER);
  if (decision.action === 'bypass') {
    const headers = new Headers(req.headers);
    console.warn(JSON.stringify({ msg: 'auth bypass: request let through without authentication', path: rawPath, route: decision.route, until: decision.until, incident: decision.incident }));
    headers.set(BYPASS_HEADER, 'true');
    const res = NextResponse.next({ request: { headers } });
    res.headers.set(BYPASS_HEADER, 'true');
    return res;
  }
  if (decision.action === 'authenticate' && decision.reason !== 'flag_missing') console.error(decision.log);
  return withClerk(req, event);
}

export const config = {
  matcher: ['/((?!_next|[^?]*\\.(?:html?|css|js(?!on)|jpe?g|webp|png|gif|svg|ttf|woff2?|ico|csv|docx?|xlsx?|zip|webmanifest)).*)', '/(api|trpc)(.*)'],
};
