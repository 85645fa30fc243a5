// Where a write's time goes, as the bench reports it: the controllers' conclave_stage_seconds
// histograms (actors/stageTimes.ts), scraped from their /metrics before and after a scenario, and
// the mean of each stage over it (Δsum / Δcount).
import { STAGES, type Stage } from '../../actors/stageTimes.ts';

export type StageTotals = Record<Stage, { sum: number; count: number }>;
/** mean ms per observation during the scenario (NaN when the stage saw none), and how many */
export type StageMeans = Record<Stage, { meanMs: number; count: number }>;

/** the sums and counts of conclave_stage_seconds at `url` (a controller's /metrics) */
export async function scrapeStages(url: string): Promise<StageTotals> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  const text = await res.text();
  const out = {} as StageTotals;
  for (const stage of STAGES) out[stage] = { sum: 0, count: 0 };
  for (const m of text.matchAll(/^conclave_stage_seconds_(sum|count)\{([^}]*)\} (\S+)$/gm)) {
    const stage = /stage="([^"]+)"/.exec(m[2]!)?.[1] as Stage | undefined;
    if (stage === undefined || !(stage in out)) continue;
    out[stage][m[1] as 'sum' | 'count'] = Number(m[3]);
  }
  return out;
}

export function stageMeans(before: StageTotals, after: StageTotals): StageMeans {
  const out = {} as StageMeans;
  for (const stage of STAGES) {
    const count = after[stage].count - before[stage].count;
    out[stage] = { meanMs: count > 0 ? ((after[stage].sum - before[stage].sum) / count) * 1000 : Number.NaN, count };
  }
  return out;
}

/** one line: each stage's mean (ms) and count */
export function formatStageMeans(means: StageMeans): string {
  return STAGES.map((s) => `${s} ${Number.isFinite(means[s].meanMs) ? means[s].meanMs.toFixed(2) : '—'} ms (×${means[s].count})`).join(', ');
}
