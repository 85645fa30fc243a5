// Stored records on the wire: the binary tail of a snapshot chunk in the `records` format
// (actors/peerWire.ts). A record is a key and a value exactly as the sender's store holds it
// (frame.ts: checksum + encoded value), so neither side encodes or decodes JSON for it:
//   repeated `count` times: [key bytes: u32 BE][key: UTF-8][value bytes: u32 BE][value: the stored record]
// and nothing after the last. parseRecords checks the layout only (it never throws); whether each
// value is a record this store can hold is the store's check (SnapshotStaging.checkRecords).
import { Buffer, isUtf8 } from 'node:buffer';

/** a record as read from the store or off the wire: its key and its value's stored bytes */
export type StoredRecord = readonly [key: string, value: Uint8Array];

/** LMDB's (and lmdb-js's) largest key */
export const MAX_KEY_BYTES = 1978;

/**
 * The largest record a snapshot carries (a record larger than a chunk travels in pieces, and the
 * receiver holds its pieces until the last): a host state is one record.
 */
export const MAX_RECORD_BYTES = 1024 * 1024 * 1024;

/** the bytes `records` take in a chunk */
export function recordsBytes(records: readonly StoredRecord[]): number {
  let bytes = 0;
  for (const [key, value] of records) bytes += recordBytes(key, value);
  return bytes;
}

/** the bytes one record takes in a chunk */
export function recordBytes(key: string, value: Uint8Array): number {
  return 8 + Buffer.byteLength(key, 'utf8') + value.byteLength;
}

/** write one record into `out` from `at` (room for recordBytes); returns where it ended */
export function writeRecord(out: Buffer, at: number, key: string, value: Uint8Array): number {
  const keyBytes = out.write(key, at + 4, 'utf8');
  out.writeUInt32BE(keyBytes, at);
  at += 4 + keyBytes;
  out.writeUInt32BE(value.byteLength, at);
  out.set(value, at + 4);
  return at + 4 + value.byteLength;
}

/** write `records` into `out` from `at`; returns where it ended */
export function writeRecords(out: Buffer, at: number, records: readonly StoredRecord[]): number {
  for (const [key, value] of records) at = writeRecord(out, at, key, value);
  return at;
}

/** the `count` records of `tail`, or what is wrong with it (lengths past the end, a key not UTF-8 or too long, bytes left over) */
export function parseRecords(tail: Uint8Array, count: number): StoredRecord[] | string {
  const buf = Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength);
  const records: StoredRecord[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 4 > buf.length) return `record ${i}: the key's length is past the end (${buf.length} bytes)`;
    const keyBytes = buf.readUInt32BE(at);
    if (keyBytes > MAX_KEY_BYTES) return `record ${i}: a key of ${keyBytes} bytes (at most ${MAX_KEY_BYTES})`;
    if (at + 4 + keyBytes + 4 > buf.length) return `record ${i}: the key is past the end (${buf.length} bytes)`;
    const key = buf.subarray(at + 4, at + 4 + keyBytes);
    if (!isUtf8(key)) return `record ${i}: the key is not UTF-8`;
    at += 4 + keyBytes;
    const valueBytes = buf.readUInt32BE(at);
    if (at + 4 + valueBytes > buf.length) return `record ${i}: a value of ${valueBytes} bytes is past the end (${buf.length} bytes)`;
    records.push([key.toString('utf8'), buf.subarray(at + 4, at + 4 + valueBytes)]);
    at += 4 + valueBytes;
  }
  if (at !== buf.length) return `${buf.length - at} bytes after the last of ${count} records`;
  return records;
}
