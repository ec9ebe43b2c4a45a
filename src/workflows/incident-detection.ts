/**
 * Detection in the incident: the detection it was opened for (the watch, an alert: who, when, the
 * evidence) and the reports that reach it later through `recordDetection` (the same trouble seen
 * again: it joins; seen clear: said, never acted on). Anyone who can reach Temporal can send a
 * report, so a report only adds to the timeline, bounded: one line per source and kind, at most
 * MAX_DETECTION_LINES lines in all, the rest counted.
 */
import { workflowInfo } from '@temporalio/workflow';
import type { detectionSchema } from '../domain';
import type { z } from 'zod';
import { parseRequest, UpdateRefused } from './incident-errors';
import { MAX_DETECTION_KEYS, MAX_DETECTION_LINES, recordDetectionSchema, type DetectionRecord, type RecordDetectionAnswer, type RecordDetectionRequest } from './incident-types';
import type { IncidentTracker } from './incident-state';


type Detection = z.output<typeof detectionSchema>;
type Report = z.output<typeof recordDetectionSchema>;

const mttd = (d: DetectionRecord) => {
  const ms = Date.parse(d.openedAt) - Date.parse(d.detectedAt);
  return Number.isFinite(ms) ? `${Math.max(0, Math.round(ms / 1000))} s` : 'unknown';
};

const evidenceSuffix = (evidence: readonly string[]) => (evidence.length ? ` (${evidence.length} evidence line(s) in the details)` : '');

export class Detections {
  constructor(private readonly tracker: IncidentTracker) {}

  /** At the start of the incident's first run: the detection it was opened for, or none (a person reported it). */
  opened(detection: Detection | undefined): void {
    if (!detection) return;
    const record: DetectionRecord = {
      detectedBy: detection.detectedBy,
      detectedAt: detection.detectedAt,
      openedAt: workflowInfo().startTime.toISOString(),
      reports: 1,
      lines: 1,
      last: detection.dedupKey ? { [detection.dedupKey]: 'firing' } : {},
    };
    this.tracker.state.detection = record;
    this.tracker.record('detection', detection.detectedBy, `detected by ${detection.detectedBy} at ${detection.detectedAt}; the incident opened ${mttd(record)} later${evidenceSuffix(detection.evidence)}`, {
      detectedBy: detection.detectedBy,
      detectedAt: detection.detectedAt,
      evidence: detection.evidence,
    });
  }

  validate(raw: RecordDetectionRequest): Report {
    const req = parseRequest(recordDetectionSchema, raw);
    const { status } = this.tracker.state;
    if (status === 'resolved' || status === 'cancelled') throw new UpdateRefused(`update: the incident is already ${status}; a new detection opens a new incident`);
    return req;
  }

  record(raw: RecordDetectionRequest): RecordDetectionAnswer {
    const req = this.validate(raw);
    const { state } = this.tracker;
    const start = workflowInfo().startTime.toISOString();
    // Reported to an incident a person opened: the person's report was the detection.
    const d = (state.detection ??= { detectedBy: 'manual', detectedAt: start, openedAt: start, reports: 0, lines: 0, last: {} });
    d.reports += 1;
    const answer = (recorded: boolean, message: string): RecordDetectionAnswer => ({ incidentId: state.incidentId, recorded, message });
    if (d.last[req.dedupKey] === req.kind) return answer(false, `counted: ${req.dedupKey.slice(0, 200)} already reported ${req.kind} (${d.reports} report(s) so far)`);
    if (!(req.dedupKey in d.last) && Object.keys(d.last).length >= MAX_DETECTION_KEYS) return answer(false, `counted: more than ${MAX_DETECTION_KEYS} sources reported; this one is not listed`);
    d.last[req.dedupKey] = req.kind;
    if (d.lines >= MAX_DETECTION_LINES) {
      if (d.lines === MAX_DETECTION_LINES) {
        d.lines += 1;
        this.tracker.record('detection', 'runbook', `more than ${MAX_DETECTION_LINES} detection reports: later ones are counted in the state (detection.reports), not listed`);
        this.tracker.publish();
      }
      return answer(false, `counted: the timeline already lists ${MAX_DETECTION_LINES} detection reports`);
    }
    d.lines += 1;
    const details = { kind: req.kind, detectedBy: req.detectedBy, at: req.detectedAt, evidence: req.evidence };
    if (req.kind === 'firing') {
      delete d.clearedAt;
      this.tracker.record('detection', req.detectedBy, `${req.detectedBy} sees it too (firing since ${req.detectedAt}): joined this incident${evidenceSuffix(req.evidence)}`, details);
      this.tracker.publish();
      return answer(true, `joined incident ${state.incidentId}`);
    }
    d.clearedAt = req.detectedAt;
    const undecided = !state.gates.some((g) => g.approvals.length > 0 || g.rejection || g.outcome) && !state.manualSteps.some((m) => m.outcome) && !state.resolution;
    this.tracker.record(
      'detection',
      req.detectedBy,
      `${req.detectedBy} sees it clear again at ${req.detectedAt}: nothing is closed automatically; ${undecided ? 'no decision was taken yet, a person decides whether to go on, resolve or cancel' : 'the runbook goes on'}`,
      details,
    );
    this.tracker.publish();
    if (undecided) {
      this.tracker.notifyLater('detection_cleared', 'Detection cleared', [
        `${req.detectedBy} sees the trouble of incident "${state.summary}" clear again at ${req.detectedAt}, before any decision.`,
        'Nothing is closed automatically: check, then resolve or cancel the incident, or go on with its steps.',
      ]);
    }
    return answer(true, `recorded in incident ${state.incidentId}: cleared`);
  }
}
