/**
 * The deployment platform, for activities: the adapter chosen by configuration (`DEPLOY_ADAPTER`,
 * docs/bypass.md) and the activity-level building blocks other steps reuse (set a value, redeploy,
 * read a deployment's state). Tokens and signing secrets come from the worker's environment.
 */
import type { Env } from '../../config';
import { vercelEdgeConfigAdapter, vercelEnvAdapter, type VercelOptions } from './vercel';
import { webhookAdapter } from './webhook';
import type { DeployAdapter } from './types';

export type {
  AdapterName,
  AliasJobStatus,
  AliasRequest,
  AliasRequested,
  AliasStatus,
  DeployAdapter,
  Deployment,
  DeploymentState,
  EnvWrite,
  ProductionDeployment,
  RollbackCapability,
  SetValueOptions,
  ValueChange,
} from './types';
export { DEPLOYMENT_STATES } from './types';
export {
  DeployAuthFailed,
  DeployError,
  DeployNotSupported,
  DeployRateLimited,
  DeployRequestRejected,
  DeployRollbackRefused,
  DeployUnavailable,
  isDeployError,
  toDeployFailure,
  AUTH_FIX,
  ROLLBACK_REFUSALS,
  type RollbackRefusal,
} from './errors';
export { rollbackSupport, type RollbackSupport } from './activities';
export { vercelEdgeConfigAdapter, vercelEnvAdapter, VERCEL_API_URL } from './vercel';
export { signRunbookWebhook, verifyRunbookWebhook, webhookAdapter, WEBHOOK_HEADERS, WEBHOOK_TOLERANCE_SECONDS } from './webhook';

/** The adapter `DEPLOY_ADAPTER` names, built from the environment (undefined when none is configured). */
export function deployAdapterFromEnv(env: Env): DeployAdapter | undefined {
  const vercel = (): Omit<VercelOptions, 'project'> => ({
    token: env.VERCEL_TOKEN ?? '',
    ...(env.VERCEL_TEAM_ID ? { teamId: env.VERCEL_TEAM_ID } : {}),
    ...(env.VERCEL_API_URL ? { apiUrl: env.VERCEL_API_URL } : {}),
  });
  switch (env.DEPLOY_ADAPTER) {
    case 'vercel':
      return vercelEnvAdapter({ ...vercel(), project: env.VERCEL_PROJECT ?? '' });
    case 'vercel-edge-config':
      return vercelEdgeConfigAdapter({ ...vercel(), edgeConfigId: env.VERCEL_EDGE_CONFIG_ID ?? '' });
    case 'webhook':
      return webhookAdapter({ url: env.DEPLOY_WEBHOOK_URL ?? '', secret: env.DEPLOY_WEBHOOK_SECRET ?? '' });
    default:
      return undefined;
  }
}

/** What a sandbox exposes for its emulated Vercel (packages/clerk-sandbox/src/vercel.ts). */
export interface SandboxVercel {
  url: string;
  token: string;
  projectId: string;
  edgeConfigId: string;
}

/** Sandbox mode: the real Vercel adapters, pointed at the sandbox's emulation. */
export function sandboxDeployAdapter(sandbox: SandboxVercel, kind: 'vercel' | 'vercel-edge-config' = 'vercel'): DeployAdapter {
  const base = { token: sandbox.token, apiUrl: sandbox.url, timeoutMs: 5000 };
  return kind === 'vercel' ? vercelEnvAdapter({ ...base, project: sandbox.projectId }) : vercelEdgeConfigAdapter({ ...base, edgeConfigId: sandbox.edgeConfigId });
}
