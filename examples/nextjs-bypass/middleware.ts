/**
 * Next.js middleware with Clerk and a SAFE emergency auth bypass (see README.md here and
 * docs/bypass.md in the runbook). Unlike "let everything through", it honours the flag only while
 * it is set AND unexpired, marks every bypassed response with `X-Auth-Bypass: true`, keeps the
 * always-protected routes closed (503), and logs each bypassed request.
 *
 * The flag is the env var CLERK_AUTH_BYPASS (set by the runbook, live after a redeploy), or, with
 * EDGE_CONFIG set, the Edge Config item of the same name (live within seconds, no redeploy).
 */
import { clerkMiddleware, createRouteMatcher } from '@clerk/nextjs/server';
import { get } from '@vercel/edge-config';
import { NextResponse, type NextFetchEvent, type NextRequest } from 'next/server';
import { BYPASS_HEADER, decideBypass } from './bypass-decision';

const FLAG = 'CLERK_AUTH_BYPASS';
const isPublicRoute = createRouteMatcher(['/', '/sign-in(.*)', '/sign-up(.*)']);

const withClerk = clerkMiddleware(async (auth, req) => {
  if (!isPublicRoute(req)) await auth.protect();
});

async function readFlag(): Promise<unknown> {
  if (process.env.EDGE_CONFIG) {
    try {
      const item = await get(FLAG);
      if (item !== undefined) return item;
    } catch {
      // Edge Config unreachable: fall back to the env var (or no bypass).
    }
  }
  return process.env[FLAG];
}

export default async function middleware(req: NextRequest, event: NextFetchEvent) {
  const decision = decideBypass({ flag: await readFlag(), path: req.nextUrl.pathname, now: Date.now() });
  if (decision.action === 'bypass') {
    console.warn(JSON.stringify({ msg: 'auth bypass: request let through without authentication', path: req.nextUrl.pathname, until: decision.until, incident: decision.incident }));
    const res = NextResponse.next();
    res.headers.set(BYPASS_HEADER, 'true');
    return res;
  }
  if (decision.action === 'closed') {
    console.warn(JSON.stringify({ msg: 'auth bypass: protected route kept closed', path: req.nextUrl.pathname, until: decision.until }));
    return new NextResponse(decision.message, { status: 503, headers: { [BYPASS_HEADER]: 'true', 'content-type': 'text/plain; charset=utf-8', 'retry-after': '300' } });
  }
  if (decision.reason === 'flag_malformed') console.error(JSON.stringify({ msg: 'auth bypass flag ignored', detail: decision.detail }));
  return withClerk(req, event);
}

export const config = {
  matcher: ['/((?!_next|[^?]*\\.(?:html?|css|js(?!on)|jpe?g|webp|png|gif|svg|ttf|woff2?|ico|csv|docx?|xlsx?|zip|webmanifest)).*)', '/(api|trpc)(.*)'],
};
