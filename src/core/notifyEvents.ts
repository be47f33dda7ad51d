// What a sync tells notify_command: one event per finished job, and how a failed sync failed —
// a login that needs a person told once until a sync succeeds again, not at every cron run.
import type { NotifyEvent } from "./config.ts";
import type { Change } from "./reconcile.ts";
import type { RunSummary } from "./runSummary.ts";
import { FINAL_STATES } from "./states.ts";

export type Notification =
  | {
      event: "job_finished";
      at: string;
      host: string;
      id: string;
      state: string;
      reason: string;
      /** Final free energy (eV) where the run summary has one. */
      energy: number | null;
    }
  | { event: "login_needed"; at: string; host: string; error: string; hint: string | null }
  | { event: "sync_failed"; at: string; host: string; error: string; exit_code: number };

/** One job_finished per job that reached a final state in this sync (each change happens once). */
export function finishedEvents(
  at: string,
  host: string,
  changes: readonly Change[],
  summaries: Readonly<Record<string, RunSummary | null>>,
): Notification[] {
  return changes
    .filter((c) => FINAL_STATES.has(c.to))
    .map((c) => ({
      event: "job_finished",
      at,
      host,
      id: c.id,
      state: c.to,
      reason: c.reason,
      energy: summaries[c.id]?.energy ?? null,
    }));
}

/** How the attempt before this one ended (the store's last_report). */
export interface PreviousAttempt {
  error: string | null;
  exit_code?: number | null;
}

/**
 * The event for a failed sync, or null: a login that needs a person (exit 3) is told when the
 * previous attempt did not already need one; another failure when it is not the same failure
 * again. A busy lock (exit 4) is another sync at work, not a failure.
 */
export function failureEvent(
  at: string,
  host: string,
  failure: { message: string; exitCode: number; hint?: string | undefined },
  previous: PreviousAttempt | null,
): Notification | null {
  if (failure.exitCode === 4) return null;
  if (failure.exitCode === 3) {
    if (previous?.exit_code === 3) return null;
    return { event: "login_needed", at, host, error: failure.message, hint: failure.hint ?? null };
  }
  if (previous?.error === failure.message) return null;
  return { event: "sync_failed", at, host, error: failure.message, exit_code: failure.exitCode };
}

export function wanted(events: readonly Notification[], on: readonly NotifyEvent[]): Notification[] {
  return events.filter((e) => on.includes(e.event));
}
