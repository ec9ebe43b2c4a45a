/**
 * The incident vocabulary (see DESIGN.md) and the zod schemas of everything that crosses a
 * boundary into a workflow. Imported by workflow code, so: no Node APIs, no I/O.
 */
import { z } from 'zod';

export const INCIDENT_CATEGORIES = [
  'clerk_outage',
  'key_compromise',
  'middleware_failure',
  'session_issues',
  'webhook_backlog',
] as const;
export const incidentCategorySchema = z.enum(INCIDENT_CATEGORIES);
export type IncidentCategory = z.infer<typeof incidentCategorySchema>;

export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Default severity per category, from the runbook's table. */
export const CATEGORY_SEVERITY: Record<IncidentCategory, Severity> = {
  clerk_outage: 'critical',
  key_compromise: 'critical',
  middleware_failure: 'high',
  session_issues: 'medium',
  webhook_backlog: 'low',
};

export const INCIDENT_STATUSES = ['triage', 'mitigating', 'monitoring', 'resolved', 'cancelled'] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

export const STEP_OUTCOMES = ['approved', 'rejected', 'timed_out', 'succeeded', 'failed', 'compensated'] as const;
export type StepOutcome = (typeof STEP_OUTCOMES)[number];

/** One line of the incident timeline: time, step, actor, what happened, details. */
export interface TimelineEvent {
  time: string;
  step: string;
  actor: string;
  description: string;
  details?: Record<string, unknown>;
}

const personSchema = z.string().trim().min(1).max(200);

/** Input of `incidentWorkflow`: one JSON object, pasteable into the UI's Start Workflow form. */
export const incidentInputSchema = z.strictObject({
  category: incidentCategorySchema.optional(),
  reporter: personSchema,
  summary: z.string().trim().min(1).max(2000),
  approvers: z.array(personSchema).max(50).default([]),
  dryRun: z.boolean().default(false),
});
export type IncidentInput = z.input<typeof incidentInputSchema>;
export type ValidIncidentInput = z.output<typeof incidentInputSchema>;

/** Status page probe result (Statuspage v2 `status.indicator`). */
export const STATUS_INDICATORS = ['none', 'minor', 'major', 'critical'] as const;
export type StatusIndicator = (typeof STATUS_INDICATORS)[number];

/**
 * zod's issues as one sentence that names each field, e.g.
 * `input.category: Invalid option: expected one of "clerk_outage"|…`.
 */
export function describeIssues(error: z.ZodError, root = 'input'): string {
  return error.issues
    .map((issue) => {
      const path = [root, ...issue.path.map(String)].join('.');
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => `${path}.${k}: unknown field`).join('; ');
      }
      return `${path}: ${issue.message}`;
    })
    .join('; ');
}
