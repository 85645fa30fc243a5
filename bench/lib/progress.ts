// Progress lines on stderr (stdout carries only the table).
const started = performance.now();

export function progress(message: string): void {
  process.stderr.write(`[bench +${((performance.now() - started) / 1000).toFixed(1)}s] ${message}\n`);
}

/** a 100-byte value (102 bytes as a JSON string), the same for every put */
export const VALUE_100B = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(3).slice(0, 100);

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
