/** Every workflow the worker registers. The bundler starts here. */
export { incidentWorkflow, getIncidentState } from './incident';
