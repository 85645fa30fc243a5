// The states of test/store/snapshot-install-crash.test.ts: an old one at OLD_INDEX, a new one
// received in BATCHES batches and installed at NEW_INDEX.
export const OLD_INDEX = 5;
export const NEW_INDEX = 20;
export const BATCHES = 8;
export const PAIRS_PER_BATCH = 250;
export const OLD_PAIRS = 1500;

export function statePairs(from: number, n: number, tag: 'old' | 'new'): Array<[string, unknown]> {
  return Array.from({ length: n }, (_, i) => [`k${String(from + i).padStart(5, '0')}`, { tag, i: from + i, pad: 'x'.repeat(2000) }]);
}
