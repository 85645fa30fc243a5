// How much fuzzing a property runs: a fixed, small count in `npm test` (CI stays bounded), more with
// `npm run fuzz -- --runs N` (which sets FUZZ_RUNS). The seed is fixed unless FUZZ_SEED says
// otherwise, so a CI failure replays exactly; fast-check prints seed and path on failure.
export function fuzzRuns(inTestSuite: number): number {
  const raw = process.env.FUZZ_RUNS;
  if (raw === undefined || raw === '') return inTestSuite;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`FUZZ_RUNS must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

export function fuzzSeed(): number {
  const raw = process.env.FUZZ_SEED;
  if (raw === undefined || raw === '') return 17;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`FUZZ_SEED must be an integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** fast-check parameters for one property: seeded, bounded, replayable */
export function fuzzParams(inTestSuite: number): { numRuns: number; seed: number; endOnFailure: true } {
  return { numRuns: fuzzRuns(inTestSuite), seed: fuzzSeed(), endOnFailure: true };
}
