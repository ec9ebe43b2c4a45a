/** Every workflow the worker registers. The bundler starts here. */
export { incidentWorkflow, getIncidentState, approveStep, rejectStep, requestStep, confirmStep, resolveIncident, getReview, extendBypass, recordDetection, completeReview, finalizeReview } from './incident';
export { revokeSessionsWorkflow, getRevocationProgress } from './revoke-sessions';
export { reconcileUsersWorkflow, getReconcileProgress, decideReconcile } from './reconcile-users';
export { bypassLeaseWorkflow, bypassSweepWorkflow } from './bypass-lease';
export { watchWorkflow } from './watch';
