// Where a write's time goes on one node: the stages of the write path, timed as they happen and kept
// as histograms (fixed buckets: counts and a sum per stage, nothing allocated per write), for
// `/metrics` (conclave_stage_seconds) and the bench's breakdown of a write; and how its proposals ended
// (conclave_proposals_total).
//
//   propose     the leader: a proposal handed to the member → its result (queued, appended, persisted,
//               replicated to a quorum, committed, applied) — a write as the leader serves it
//   persist     raft's durable write of the hard state and appended entries (every role)
//   commit      the leader: an entry appended (its persist started) → committed, i.e. its own write and
//               the round trip to a quorum of followers, each of which persisted it
//   apply       committed entries applied to the state in memory, their proposals answered
//   stateWrite  the applied state written to the store (after the answers of the turn have gone out)
//
// Timed with the process's high-resolution clock: observations only, nothing decides on them.

export const STAGES = ['propose', 'persist', 'commit', 'apply', 'stateWrite'] as const;
export type Stage = (typeof STAGES)[number];

/** upper bounds of the buckets, seconds (Prometheus' unit); a last bucket, +Inf, holds the rest */
export const STAGE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] as const;

export interface StageHistogram {
  /** cumulative counts: observations ≤ STAGE_BUCKETS[i], then all of them (+Inf) */
  cumulative: number[];
  count: number;
  /** seconds */
  sum: number;
}

export class StageTimes {
  /**
   * The proposals made to this node (commands; not configuration changes), by outcome: applied (its
   * result returned), refused before it entered the log (invalid, too large, stopping, not the leader,
   * busy), or failed after it did (leadership lost, the outcome unknown at a stop, the state refused it).
   */
  readonly proposals = { applied: 0, refused: 0, failed: 0 };
  /** per stage: count per bucket (not cumulative), the last one +Inf */
  readonly #counts = new Map<Stage, Float64Array>();
  readonly #sums = new Map<Stage, number>();
  /** the leader's appended entries not yet committed: index → when its persist started (ms) */
  readonly #appended = new Map<number, number>();

  constructor(readonly now: () => number = () => performance.now()) {
    for (const s of STAGES) {
      this.#counts.set(s, new Float64Array(STAGE_BUCKETS.length + 1));
      this.#sums.set(s, 0);
    }
  }

  /** `stage` took from `startedMs` (this.now()'s time) until now */
  observe(stage: Stage, startedMs: number): void {
    const seconds = Math.max(0, (this.now() - startedMs) / 1000);
    let i = 0;
    while (i < STAGE_BUCKETS.length && seconds > STAGE_BUCKETS[i]!) i++;
    this.#counts.get(stage)![i]!++;
    this.#sums.set(stage, this.#sums.get(stage)! + seconds);
  }

  /** the leader appends entries (their persist starts at `startedMs`) */
  appended(entries: ReadonlyArray<{ index: number }>, startedMs: number): void {
    for (const e of entries) this.#appended.set(e.index, startedMs);
  }

  /** entries committed (in index order): the commit stage of those this node appended as leader */
  committed(entries: ReadonlyArray<{ index: number }>): void {
    if (this.#appended.size === 0 || entries.length === 0) return;
    for (const e of entries) {
      const at = this.#appended.get(e.index);
      if (at !== undefined) this.observe('commit', at);
    }
    // and what was appended at or below them and never committed as this node appended it (lost with a
    // leadership); a leadership appends in index order, so the map's keys ascend
    const last = entries[entries.length - 1]!.index;
    for (const index of this.#appended.keys()) {
      if (index > last) break;
      this.#appended.delete(index);
    }
  }

  /** no longer leading: what it appended is no longer its to time */
  forgetAppended(): void {
    this.#appended.clear();
  }

  histograms(): Record<Stage, StageHistogram> {
    const out = {} as Record<Stage, StageHistogram>;
    for (const s of STAGES) {
      const counts = this.#counts.get(s)!;
      const cumulative: number[] = [];
      let running = 0;
      for (const c of counts) {
        running += c;
        cumulative.push(running);
      }
      out[s] = { cumulative, count: running, sum: this.#sums.get(s)! };
    }
    return out;
  }
}
