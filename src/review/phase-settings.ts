/** The post-incident phase's worker setting (REVIEW_PHASE, REVIEW_REMIND_EVERY), shared by the worker wiring, the activity and the workflow. */
export interface ReviewPhaseSettings {
  /** How long the incident stays open after `resolved` with its review a draft. */
  withinMs: number;
  /** How often the channel is reminded while findings are missing. */
  remindEveryMs: number;
}
