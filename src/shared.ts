/** Names shared by the worker, the workflows, the clients and the tests (no Node APIs here). */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const TASK_QUEUE = 'clerk-incident';
export const NAMESPACE_DEFAULT = 'default';

/** Keyword search attributes registered on every server we start (dev server and tests). */
export const SEARCH_ATTRIBUTES = ['IncidentCategory', 'IncidentSeverity', 'IncidentStatus'] as const;
export const IncidentCategoryKey = defineSearchAttributeKey('IncidentCategory', SearchAttributeType.KEYWORD);
export const IncidentSeverityKey = defineSearchAttributeKey('IncidentSeverity', SearchAttributeType.KEYWORD);
export const IncidentStatusKey = defineSearchAttributeKey('IncidentStatus', SearchAttributeType.KEYWORD);

/** The kinds of Clerk failure (`src/activities/clerk-errors.ts`); each is also an activity failure type. */
export const CLERK_ERROR_NAMES = ['ClerkRateLimited', 'ClerkUnavailable', 'ClerkKeyInvalid', 'ClerkRequestRejected'] as const;
export type ClerkErrorName = (typeof CLERK_ERROR_NAMES)[number];
/**
 * Activity failure types that retrying will not fix. Every `proxyActivities` retry policy names
 * them in `nonRetryableErrorTypes`, so they stop at once even if thrown as retryable.
 */
export const NON_RETRYABLE_ERROR_TYPES = ['ClerkKeyInvalid', 'ClerkRequestRejected'] as const satisfies readonly ClerkErrorName[];
