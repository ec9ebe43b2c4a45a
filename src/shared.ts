/** Names shared by the worker, the workflows, the clients and the tests (no Node APIs here). */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const TASK_QUEUE = 'clerk-incident';
export const NAMESPACE_DEFAULT = 'default';
/**
 * The incident's workflow task timeout (the server's default is 10 s). A flood of large signals
 * makes one task over a multi-MiB history take longer than 10 s on a loaded worker; each timeout
 * evicts the run and the next attempt replays the whole history, slower still, so the run could
 * never reach the continue-as-new that would save it. A minute lets that task finish; a crashed
 * worker's task is retried after it (sticky tasks go back to the normal queue after 5 s anyway).
 */
export const INCIDENT_WORKFLOW_TASK_TIMEOUT = '1 minute';

/** Keyword search attributes registered on every server we start (dev server and tests). */
export const SEARCH_ATTRIBUTES = ['IncidentCategory', 'IncidentSeverity', 'IncidentStatus'] as const;
export const IncidentCategoryKey = defineSearchAttributeKey('IncidentCategory', SearchAttributeType.KEYWORD);
export const IncidentSeverityKey = defineSearchAttributeKey('IncidentSeverity', SearchAttributeType.KEYWORD);
export const IncidentStatusKey = defineSearchAttributeKey('IncidentStatus', SearchAttributeType.KEYWORD);

/** The kinds of Clerk failure (`src/activities/clerk-errors.ts`); each is also an activity failure type. */
export const CLERK_ERROR_NAMES = ['ClerkRateLimited', 'ClerkUnavailable', 'ClerkKeyInvalid', 'ClerkRequestRejected'] as const;
export type ClerkErrorName = (typeof CLERK_ERROR_NAMES)[number];
/** The kinds of deployment-platform failure (`src/activities/deploy/errors.ts`), also activity failure types. */
export const DEPLOY_ERROR_NAMES = ['DeployUnavailable', 'DeployRateLimited', 'DeployAuthFailed', 'DeployRequestRejected', 'DeployRollbackRefused', 'DeployNotSupported'] as const;
export type DeployErrorName = (typeof DEPLOY_ERROR_NAMES)[number];
/** The kinds of paging failure (`src/activities/paging.ts`), also activity failure types. */
export const PAGING_ERROR_NAMES = ['PagingUnavailable', 'PagingRateLimited', 'PagingEventRejected', 'PagingTargetUnknown'] as const;
export type PagingErrorName = (typeof PAGING_ERROR_NAMES)[number];
/**
 * The kinds of Clerk Platform API failure (`src/activities/instance-config.ts`; key-rotation.ts
 * throws the first two too), also activity failure types. Only `PlatformApiUnavailable` is retried;
 * a version mismatch means someone else changed the config: read it again, decide again.
 */
export const PLATFORM_ERROR_NAMES = ['PlatformApiUnavailable', 'PlatformApiRejected', 'InstanceConfigVersionMismatch', 'PlatformApiNotConfigured'] as const;
export type PlatformErrorName = (typeof PLATFORM_ERROR_NAMES)[number];
/**
 * Activity failure types that retrying will not fix. Every `proxyActivities` retry policy names
 * them in `nonRetryableErrorTypes`, so they stop at once even if thrown as retryable.
 */
export const NON_RETRYABLE_ERROR_TYPES = ['ClerkKeyInvalid', 'ClerkRequestRejected', 'DeployAuthFailed', 'DeployRequestRejected', 'DeployRollbackRefused', 'DeployNotSupported', 'PagingEventRejected', 'PagingTargetUnknown'] as const satisfies readonly (ClerkErrorName | DeployErrorName | PagingErrorName)[];

/**
 * The `npm run incident` commands the workflow, the chat and the CLI tell a person to run, with
 * placeholders for what only they know. One place, so every surface says the same.
 */
export const INCIDENT_COMMANDS = {
  approve: (id: string, step: string) => `npm run incident -- approve ${id} --step ${step} --approver <you>`,
  confirm: (id: string, step: string) => `npm run incident -- confirm ${id} --step ${step} --by <you> --note "<what you did>"`,
  resolve: (id: string) => `npm run incident -- resolve ${id} --by <you> --summary "<why it is over>"`,
  review: (id: string) => `npm run incident -- review ${id}`,
  completeReview: (id: string) => `npm run incident -- complete-review ${id} --by <you> --file findings.json (or --root-cause … --action-item "title|owner|YYYY-MM-DD")`,
  finalizeReview: (id: string) => `npm run incident -- finalize-review ${id} --by <you>`,
  /** Signed approvals (docs/signed-approvals.md): decide with your SSH key, or print the JSON to paste into the UI. */
  decideSigned: (id: string, step: string, decision: 'approve' | 'reject' = 'approve') =>
    `npm run incident -- ${decision} ${id} --step ${step} --approver <you>${decision === 'reject' ? ' --reason "<why>"' : ''} --sign <~/.ssh/id_ed25519 | agent>`,
  sign: (id: string, step: string, decision: 'approve' | 'reject' = 'approve') =>
    `npm run incident -- sign ${id} ${decision} --step ${step} --approver <you>${decision === 'reject' ? ' --reason "<why>"' : ''} --key <~/.ssh/id_ed25519 | agent>`,
};
