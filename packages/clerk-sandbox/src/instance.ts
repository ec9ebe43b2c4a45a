/**
 * The sandbox's Clerk instance as the diagnostics see it: its Frontend API host (and the
 * publishable key that encodes it), its domains and allowed origins, the RS256 key pair that
 * signs session tokens (served as JWKS), the clock its answers carry in their `Date` header, and
 * its configuration (session lifetime; served by the Platform API, instance-config.ts).
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { InstanceConfig, type InstanceConfigOverview, type SessionSettings } from './instance-config';
import { parseInput, SandboxInputError, sessionSettingsBodySchema } from './schemas';

/** How Clerk encodes a publishable key: `pk_test_` / `pk_live_` + base64 of `<frontend api host>$`. */
export function encodePublishableKey(frontendApiHost: string, live = false): string {
  return `pk_${live ? 'live' : 'test'}_${Buffer.from(`${frontendApiHost}$`).toString('base64')}`;
}

export interface DomainJson {
  object: 'domain';
  id: string;
  name: string;
  is_satellite: boolean;
  frontend_api_url: string;
  accounts_portal_url: string | null;
  proxy_url: string | null;
  development_origin: string;
  cname_targets: null;
}

export interface InstanceJson {
  object: 'instance';
  id: string;
  environment_type: 'development';
  allowed_origins: string[];
  workspace_id: null;
}

export interface RsaJwk {
  use: 'sig';
  kty: 'RSA';
  kid: string;
  alg: 'RS256';
  n: string;
  e: string;
}

/** Default session token lifetime, as Clerk's (the reason skew of a few seconds matters). */
export const SESSION_TOKEN_TTL_SECONDS = 60;
/** Clerk backdates `nbf` a little to absorb small skews. */
const NBF_LEEWAY_SECONDS = 10;

/** Where a skewed clock shows: Clerk's answers, the example app's health route, or both. */
export type ClockTarget = 'clerk' | 'app';
export interface ClockSetting {
  skewMs: number;
  applyTo: ClockTarget[];
}

export class SandboxInstance {
  /** e.g. `clerk-sandbox.clerk.accounts.dev` (a development instance's Frontend API). */
  readonly frontendApiHost: string;
  readonly publishableKey: string;
  readonly satelliteName = 'satellite.sandbox.test';
  /** Extra origins allowed besides the domains (Backend API `allowed_origins`, written by `PATCH /v1/instance`). */
  readonly allowedOrigins: string[] = [];

  setAllowedOrigins(origins: readonly string[]): void {
    this.allowedOrigins.splice(0, this.allowedOrigins.length, ...new Set(origins.map((o) => o.replace(/\/$/, ''))));
  }
  clock: ClockSetting = { skewMs: 0, applyTo: ['clerk', 'app'] };
  /** The `session` settings and their version, as the Platform API's config endpoint serves them. */
  readonly config = new InstanceConfig();
  private keys: { privateKey: KeyObject; jwk: RsaJwk } | null = null;

  constructor(
    readonly instanceId: string,
    seed: string | number,
  ) {
    const slug = String(seed).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 30) || 'sandbox';
    this.frontendApiHost = `${slug}.clerk.accounts.dev`;
    this.publishableKey = encodePublishableKey(this.frontendApiHost);
  }

  /** `now` as the instance's (possibly skewed) clock reads it, for a target. */
  now(target: ClockTarget, real = Date.now()): number {
    return this.clock.applyTo.includes(target) ? real + this.clock.skewMs : real;
  }

  instanceJson(): InstanceJson {
    return { object: 'instance', id: this.instanceId, environment_type: 'development', allowed_origins: [...this.allowedOrigins], workspace_id: null };
  }

  /**
   * Injects a maximum session lifetime (whole seconds, from 1 s: shorter than the API allows, for
   * drills), as a Dashboard change would: the config version moves, sessions created from now on
   * expire after it, existing ones keep their `expire_at`.
   */
  setSessionLifetime(ms: number): SessionSettings {
    return this.setSessionSettings({ maxLifetimeMs: ms });
  }

  /** `setSessionLifetime` for both settings; null turns one off (one must stay on). */
  setSessionSettings(body: unknown): SessionSettings {
    const b = parseInput(sessionSettingsBodySchema, body);
    try {
      return this.config.set(b);
    } catch (err) {
      throw new SandboxInputError('(body)', (err as Error).message);
    }
  }

  /** The configuration for assertions: version, session settings, the lifetime new sessions get, every change and dry run. */
  configOverview(): InstanceConfigOverview {
    return this.config.overview();
  }

  /** The primary domain is the app's own origin (development instances name it with its port), plus one satellite. */
  domains(appUrl: string): DomainJson[] {
    const app = new URL(appUrl);
    const id = (name: string) => `dmn_${createHash('sha256').update(`${this.instanceId}:${name}`).digest('hex').slice(0, 27)}`;
    return [
      {
        object: 'domain',
        id: id(app.host),
        name: app.host,
        is_satellite: false,
        frontend_api_url: `https://${this.frontendApiHost}`,
        accounts_portal_url: `https://${this.frontendApiHost.replace('.clerk.accounts.dev', '.accounts.dev')}`,
        proxy_url: null,
        development_origin: app.origin,
        cname_targets: null,
      },
      {
        object: 'domain',
        id: id(this.satelliteName),
        name: this.satelliteName,
        is_satellite: true,
        frontend_api_url: `https://clerk.${this.satelliteName}`,
        accounts_portal_url: null,
        proxy_url: null,
        development_origin: '',
        cname_targets: null,
      },
    ];
  }

  /** Generated on first use: an RSA key takes a moment, and most sandboxes never sign a token. */
  private keyPair(): { privateKey: KeyObject; jwk: RsaJwk } {
    if (!this.keys) {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const pub = publicKey.export({ format: 'jwk' });
      const kid = `ins_${createHash('sha256').update(`${pub.n}`).digest('hex').slice(0, 27)}`;
      this.keys = { privateKey, jwk: { use: 'sig', kty: 'RSA', kid, alg: 'RS256', n: String(pub.n), e: String(pub.e) } };
    }
    return this.keys;
  }

  jwks(): { keys: RsaJwk[] } {
    return { keys: [this.keyPair().jwk] };
  }

  /** A session token as Clerk mints it (RS256, `sid`, `sub`, `azp`, `iss`, `iat`, `nbf`, `exp`), dated by the instance's clock. */
  sessionToken(claims: { sessionId: string; userId: string; azp: string }, expiresInSeconds = SESSION_TOKEN_TTL_SECONDS): string {
    const { privateKey, jwk } = this.keyPair();
    const iat = Math.floor(this.now('clerk') / 1000);
    const header = { alg: 'RS256', kid: jwk.kid, typ: 'JWT' };
    const payload = {
      azp: claims.azp,
      exp: iat + expiresInSeconds,
      iat,
      iss: `https://${this.frontendApiHost}`,
      nbf: iat - NBF_LEEWAY_SECONDS,
      sid: claims.sessionId,
      sub: claims.userId,
    };
    const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const signingInput = `${b64(header)}.${b64(payload)}`;
    const signature = sign('RSA-SHA256', Buffer.from(signingInput), privateKey).toString('base64url');
    return `${signingInput}.${signature}`;
  }
}
