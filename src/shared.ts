/** Names shared by the worker, the workflows, the clients and the tests (no Node APIs here). */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const TASK_QUEUE = 'clerk-incident';
export const NAMESPACE_DEFAULT = 'default';

/** Keyword search attributes registered on every server we start (dev server and tests). */
export const SEARCH_ATTRIBUTES = ['IncidentCategory', 'IncidentSeverity', 'IncidentStatus'] as const;
export const IncidentCategoryKey = defineSearchAttributeKey('IncidentCategory', SearchAttributeType.KEYWORD);
export const IncidentSeverityKey = defineSearchAttributeKey('IncidentSeverity', SearchAttributeType.KEYWORD);
export const IncidentStatusKey = defineSearchAttributeKey('IncidentStatus', SearchAttributeType.KEYWORD);
