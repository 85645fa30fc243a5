// Latency figures and the load generators: one client, K requests in flight, or open loop.

export interface LoadResult {
  n: number;
  concurrency: number;
  elapsedMs: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  firstError: string | null;
}

/** nearest-rank percentile of a sorted array */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Run `n` operations with `concurrency` of them in flight at any time (1 = sequential), each
 * timed from the call to its settlement. Failed operations are counted, not retried.
 */
export async function runClosedLoop(n: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<LoadResult> {
  const latencies = new Float64Array(n);
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | null = null;
  const started = performance.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const t0 = performance.now();
      try {
        await op(i);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message ?? String(err);
      }
      latencies[done++] = performance.now() - t0;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  const elapsedMs = performance.now() - started;
  latencies.sort();
  return {
    n,
    concurrency,
    elapsedMs,
    opsPerSec: ((n - errors) / elapsedMs) * 1000,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies[n - 1] ?? Number.NaN,
    errors,
    firstError,
  };
}

export interface OpenLoopRecord {
  sentAt: number;
  ackAt: number | null;
  error: string | null;
}

/** Issue an operation every `intervalMs` (not waiting for answers) until stop() is called. */
export function startOpenLoop(intervalMs: number, op: (i: number) => Promise<unknown>): { records: OpenLoopRecord[]; stop(): Promise<void> } {
  const records: OpenLoopRecord[] = [];
  const pending = new Set<Promise<void>>();
  let running = true;
  let i = 0;
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    if (!running) return;
    const record: OpenLoopRecord = { sentAt: performance.now(), ackAt: null, error: null };
    records.push(record);
    const p = op(i++).then(
      () => {
        record.ackAt = performance.now();
      },
      (err: unknown) => {
        record.error = (err as Error).message ?? String(err);
      },
    );
    pending.add(p);
    void p.finally(() => pending.delete(p));
    // schedule against the start time, so slow ticks do not make the rate drift
    const due = started + i * intervalMs;
    timer = setTimeout(tick, Math.max(0, due - performance.now()));
  };
  tick();
  return {
    records,
    stop: async () => {
      running = false;
      clearTimeout(timer);
      await Promise.all(pending);
    },
  };
}
