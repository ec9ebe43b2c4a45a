/**
 * What the server (server.ts) and its route plugins (routes/*) share: the context each plugin is
 * registered with, and the per-route config and per-request state the request pipeline reads.
 * Apart from server.ts so the plugins do not import the module that imports them.
 */
import type { SandboxAdmin } from './admin';
import type { AuditFault, KeyState } from './audit';
import type { RouteKey } from './schemas';

declare module 'fastify' {
  interface FastifyContextConfig {
    routeKey?: RouteKey;
    /** A Clerk Backend API route: secret key, rate limit and global faults apply. */
    clerk?: boolean;
  }
  interface FastifyRequest {
    sbx: RequestContext | null;
  }
}

/** What the pipeline knows of a request with a route key, for its audit entry. */
export interface RequestContext {
  route: RouteKey;
  arrivedAt: number;
  keyId: string | null;
  keyState: KeyState | null;
  fault: AuditFault | null;
  recorded: boolean;
}

export interface ServerContext {
  admin: SandboxAdmin;
  /** The sandbox's own base URL (known once listening); the example app calls Clerk through it. */
  selfUrl: () => string;
}
