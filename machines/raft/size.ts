// Encoded sizes of log entries, for batching appends by bytes (etcd's MaxSizePerMsg). An entry's
// size is what it takes inside a JSON message, in UTF-8 bytes, computed once per entry object and
// cached: entries are immutable once created, and the log and messages share the same objects.
import type { Entry } from './types.ts';

const sizes = new WeakMap<Entry, number>();

/** the UTF-8 bytes of a text */
export const byteLength: (text: string) => number =
  typeof Buffer === 'undefined'
    ? (text) => {
        let bytes = 0;
        for (let i = 0; i < text.length; i++) {
          const c = text.charCodeAt(i);
          if (c < 0x80) bytes += 1;
          else if (c < 0x800) bytes += 2;
          else if (c >= 0xd800 && c <= 0xdbff) {
            bytes += 4; // a surrogate pair: one 4-byte character
            i++;
          } else bytes += 3;
        }
        return bytes;
      }
    : (text) => Buffer.byteLength(text, 'utf8');

/** the UTF-8 bytes of `entry` as JSON (exactly its share of a JSON message), cached per entry */
export function entryBytes(entry: Entry): number {
  let size = sizes.get(entry);
  if (size === undefined) {
    size = byteLength(JSON.stringify(entry));
    sizes.set(entry, size);
  }
  return size;
}

/** the bytes of a batch of entries (each cached) */
export function entriesBytes(entries: readonly Entry[]): number {
  let total = 0;
  for (const e of entries) total += entryBytes(e) + 1;
  return total;
}

/** the UTF-8 bytes of a JSON value's text */
export function jsonBytes(value: unknown): number {
  return byteLength(JSON.stringify(value) ?? '');
}

/** the longest prefix of `entries` whose sizes (plus separators) stay within `maxBytes`; never empty if entries is not */
export function limitBytes(entries: Entry[], maxBytes: number): Entry[] {
  if (!Number.isFinite(maxBytes)) return entries;
  let total = 0;
  for (let i = 0; i < entries.length; i++) {
    total += entryBytes(entries[i]!) + 1;
    if (total > maxBytes && i > 0) return entries.slice(0, i);
  }
  return entries;
}
