// The one backoff of the project: every retry that waits longer after each failure (the membership
// chart's offers, initialMembers, auto-join announcements) takes its delay from here. Pure.

export interface Backoff {
  /** the delay before the first retry */
  baseMs: number;
  /** the delay never grows past this */
  maxMs: number;
}

/** the delay before retry number `attempt` (1 is the first retry): base · 2^(attempt−1), capped at max */
export function backoffDelay(backoff: Backoff, attempt: number): number {
  return Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, attempt - 1));
}
