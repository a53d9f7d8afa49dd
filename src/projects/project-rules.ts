import type { ProjectStatus } from '../infra/database-schema.js';
import { conflict } from '../errors.js';

// The project lifecycle: draft -> open -> closed (and back to open), any unfinished state ->
// cancelled. "settled" is reached only through settlement and, like "cancelled", is final.
const TRANSITIONS: Record<ProjectStatus, readonly ProjectStatus[]> = {
  draft: ['open', 'cancelled'],
  open: ['closed', 'cancelled'],
  closed: ['open', 'cancelled'],
  settled: [],
  cancelled: [],
};

export function assertTransition(from: ProjectStatus, to: ProjectStatus): void {
  // Checked first, also when the status does not change: an edit that leaves the status alone
  // (a new title or reward pool) must not slip into a frozen project either.
  assertProjectEditable(from);
  if (from === to) return;
  if (!TRANSITIONS[from].includes(to)) {
    throw conflict('invalid_status_transition', `A project cannot go from ${from} to ${to}.`);
  }
}

/** Settled and cancelled projects are frozen: no edits, tasks, claims, reviews or adjustments. */
export function assertProjectEditable(status: ProjectStatus): void {
  if (status === 'settled')
    throw conflict('project_settled', 'This project has been settled; it can no longer change.');
  if (status === 'cancelled')
    throw conflict('project_cancelled', 'This project was cancelled; it can no longer change.');
}

/** New claims need an open project. */
export function assertProjectOpen(status: ProjectStatus): void {
  assertProjectEditable(status);
  if (status !== 'open')
    throw conflict('project_not_open', `The project is ${status}; tasks can be claimed only while it is open.`);
}
