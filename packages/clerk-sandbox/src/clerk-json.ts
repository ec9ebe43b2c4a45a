/**
 * Users and sessions in Clerk's JSON shapes (the subset of fields the SDK reads plus the spec's
 * required ones), built from a row on read.
 */
import {
  BROWSERS,
  FIRST_NAMES,
  INACTIVITY_TIMEOUT_MS,
  LAST_NAMES,
  SESSION_STATUSES,
  isBanned,
  userEmail,
  type SessionColumns,
  type SessionStatus,
  type UserColumns,
} from './columns';
import type { InstanceIds } from './ids';

export interface EmailAddressJson {
  id: string;
  object: 'email_address';
  email_address: string;
  reserved: boolean;
  verification: {
    object: 'verification_otp';
    status: 'verified';
    strategy: 'email_code';
    attempts: number;
    expire_at: number;
  };
  linked_to: never[];
  matches_sso_connection: boolean;
  created_at: number;
  updated_at: number;
}

export interface UserJson {
  id: string;
  object: 'user';
  external_id: string | null;
  primary_email_address_id: string | null;
  primary_phone_number_id: string | null;
  primary_web3_wallet_id: string | null;
  username: string | null;
  first_name: string | null;
  last_name: string | null;
  locale: string | null;
  image_url: string;
  has_image: boolean;
  public_metadata: Record<string, unknown>;
  private_metadata: Record<string, unknown>;
  unsafe_metadata: Record<string, unknown>;
  email_addresses: EmailAddressJson[];
  phone_numbers: never[];
  web3_wallets: never[];
  passkeys: never[];
  password_enabled: boolean;
  two_factor_enabled: boolean;
  totp_enabled: boolean;
  backup_code_enabled: boolean;
  mfa_enabled_at: number | null;
  mfa_disabled_at: number | null;
  password_last_updated_at: number | null;
  external_accounts: never[];
  saml_accounts: never[];
  enterprise_accounts: never[];
  organization_memberships: never[];
  last_sign_in_at: number | null;
  banned: boolean;
  locked: boolean;
  deprovisioned: boolean;
  lockout_expires_in_seconds: number | null;
  verification_attempts_remaining: number | null;
  updated_at: number;
  created_at: number;
  delete_self_enabled: boolean;
  create_organization_enabled: boolean;
  create_organizations_limit: number | null;
  last_active_at: number | null;
  legal_accepted_at: number | null;
  bypass_client_trust: boolean;
}

export interface SessionJson {
  object: 'session';
  id: string;
  user_id: string;
  client_id: string;
  actor: null;
  status: SessionStatus;
  last_active_organization_id: null;
  last_active_at: number;
  latest_activity: {
    object: 'session_activity';
    id: string;
    device_type: string;
    is_mobile: boolean;
    browser_name: string;
    browser_version: string;
    ip_address: string;
    city: string;
    country: string;
  };
  expire_at: number;
  abandon_at: number;
  updated_at: number;
  created_at: number;
  tasks: null;
}

export function buildUserJson(u: UserColumns, ids: InstanceIds, i: number): UserJson {
  const createdAt = u.createdAt[i]!;
  const updatedAt = u.updatedAt[i]!;
  const emailId = ids.email.encode(i);
  const lastActive = u.lastActiveAt[i]!;
  const lastSignIn = u.lastSignInAt[i]!;
  return {
    id: ids.user.encode(i),
    object: 'user',
    external_id: null,
    primary_email_address_id: emailId,
    primary_phone_number_id: null,
    primary_web3_wallet_id: null,
    username: null,
    first_name: FIRST_NAMES[u.firstName[i]!]!,
    last_name: LAST_NAMES[u.lastName[i]!]!,
    locale: null,
    image_url: 'https://img.clerk.com/sandbox-default-avatar',
    has_image: false,
    public_metadata: {},
    private_metadata: {},
    unsafe_metadata: {},
    email_addresses: [
      {
        id: emailId,
        object: 'email_address',
        email_address: userEmail(u, i),
        reserved: false,
        verification: {
          object: 'verification_otp',
          status: 'verified',
          strategy: 'email_code',
          attempts: 1,
          expire_at: createdAt + 600_000,
        },
        linked_to: [],
        matches_sso_connection: false,
        created_at: createdAt,
        updated_at: createdAt,
      },
    ],
    phone_numbers: [],
    web3_wallets: [],
    passkeys: [],
    password_enabled: true,
    two_factor_enabled: false,
    totp_enabled: false,
    backup_code_enabled: false,
    mfa_enabled_at: null,
    mfa_disabled_at: null,
    password_last_updated_at: createdAt,
    external_accounts: [],
    saml_accounts: [],
    enterprise_accounts: [],
    organization_memberships: [],
    last_sign_in_at: Number.isNaN(lastSignIn) ? null : lastSignIn,
    banned: isBanned(u, i),
    locked: false,
    deprovisioned: false,
    lockout_expires_in_seconds: null,
    verification_attempts_remaining: 100,
    updated_at: updatedAt,
    created_at: createdAt,
    delete_self_enabled: true,
    create_organization_enabled: true,
    create_organizations_limit: null,
    last_active_at: Number.isNaN(lastActive) ? null : lastActive,
    legal_accepted_at: null,
    bypass_client_trust: false,
  };
}

/**
 * `JSON.stringify(userJson(i))`, built directly: list pages of 500 users are the sandbox's
 * heaviest answers. Every interpolated string is generated (ids, names, emails) and needs no
 * escaping; a test keeps the two in step.
 */
export function buildUserJsonString(u: UserColumns, ids: InstanceIds, i: number): string {
  const createdAt = u.createdAt[i]!;
  const emailId = ids.email.encode(i);
  const lastActive = u.lastActiveAt[i]!;
  const lastSignIn = u.lastSignInAt[i]!;
  const num = (v: number) => (Number.isNaN(v) ? 'null' : String(v));
  return (
    `{"id":"${ids.user.encode(i)}","object":"user","external_id":null,"primary_email_address_id":"${emailId}",` +
    `"primary_phone_number_id":null,"primary_web3_wallet_id":null,"username":null,` +
    `"first_name":"${FIRST_NAMES[u.firstName[i]!]}","last_name":"${LAST_NAMES[u.lastName[i]!]}","locale":null,` +
    `"image_url":"https://img.clerk.com/sandbox-default-avatar","has_image":false,"public_metadata":{},"private_metadata":{},"unsafe_metadata":{},` +
    `"email_addresses":[{"id":"${emailId}","object":"email_address","email_address":"${userEmail(u, i)}","reserved":false,` +
    `"verification":{"object":"verification_otp","status":"verified","strategy":"email_code","attempts":1,"expire_at":${createdAt + 600_000}},` +
    `"linked_to":[],"matches_sso_connection":false,"created_at":${createdAt},"updated_at":${createdAt}}],` +
    `"phone_numbers":[],"web3_wallets":[],"passkeys":[],"password_enabled":true,"two_factor_enabled":false,"totp_enabled":false,` +
    `"backup_code_enabled":false,"mfa_enabled_at":null,"mfa_disabled_at":null,"password_last_updated_at":${createdAt},` +
    `"external_accounts":[],"saml_accounts":[],"enterprise_accounts":[],"organization_memberships":[],` +
    `"last_sign_in_at":${num(lastSignIn)},"banned":${isBanned(u, i)},"locked":false,"deprovisioned":false,` +
    `"lockout_expires_in_seconds":null,"verification_attempts_remaining":100,"updated_at":${u.updatedAt[i]!},"created_at":${createdAt},` +
    `"delete_self_enabled":true,"create_organization_enabled":true,"create_organizations_limit":null,` +
    `"last_active_at":${num(lastActive)},"legal_accepted_at":null,"bypass_client_trust":false}`
  );
}

export function buildSessionJson(s: SessionColumns, ids: InstanceIds, j: number): SessionJson {
  const browser = BROWSERS[s.browser[j]!]!;
  return {
    object: 'session',
    id: ids.session.encode(j),
    user_id: ids.user.encode(s.user[j]!),
    client_id: ids.client.encode(j),
    actor: null,
    status: SESSION_STATUSES[s.status[j]!]!,
    last_active_organization_id: null,
    last_active_at: s.lastActiveAt[j]!,
    latest_activity: {
      object: 'session_activity',
      id: ids.activity.encode(j),
      device_type: 'Macintosh',
      is_mobile: false,
      browser_name: browser,
      browser_version: '131.0.0.0',
      ip_address: `203.0.113.${j % 254 + 1}`,
      city: 'Sandbox City',
      country: 'ZZ',
    },
    expire_at: s.expireAt[j]!,
    abandon_at: s.createdAt[j]! + INACTIVITY_TIMEOUT_MS,
    updated_at: s.updatedAt[j]!,
    created_at: s.createdAt[j]!,
    tasks: null,
  };
}

