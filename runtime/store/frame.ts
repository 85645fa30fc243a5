// Checksummed records (store format 2): every value in every database is stored as
//   [CRC-32 of the payload, 4 bytes big-endian][payload: the value as lmdb-js's msgpack encodes it]
// The checksum is computed once, over the bytes the value is encoded to anyway (no second
// encoding), and checked on every read: a flipped bit in a record is a CORRUPT error, never a
// wrong value served. (verify-child.mjs checks the same frame without decoding; keep them alike.)
import { crc32 } from 'node:zlib';

export const FRAME_HEADER = 4;

/** A record whose checksum does not match its bytes. */
export class DamagedRecordError extends Error {
  override readonly name = 'DamagedRecordError';
}

export function frame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  out.set(payload, FRAME_HEADER);
  out.writeUInt32BE(crc32(payload), 0);
  return out;
}

/** the payload of a framed record (a view, not a copy), or DamagedRecordError */
export function unframe(buf: Uint8Array, end = buf.length): Uint8Array {
  if (end < FRAME_HEADER) throw new DamagedRecordError(`record of ${end} bytes is shorter than its checksum`);
  const payload = buf.subarray(FRAME_HEADER, end);
  const stored = ((buf[0]! << 24) | (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!) >>> 0;
  if (crc32(payload) !== stored) throw new DamagedRecordError('record checksum mismatch');
  return payload;
}

export interface ValueCodec {
  encode(value: unknown): Uint8Array;
  decode(buf: Uint8Array, end?: number): unknown;
}

/**
 * An lmdb-js `encoder` that frames what `inner` encodes. lmdb-js calls decode(bytes, end) with a
 * shared buffer longer than the record in range reads (hence `end`), and decode(bytes, options)
 * in get() (hence the type check).
 */
export function checksummedCodec(inner: ValueCodec): ValueCodec {
  const codec: ValueCodec = {
    encode: (value) => frame(inner.encode(value)),
    decode(buf, end) {
      const payload = unframe(buf, typeof end === 'number' ? end : buf.length);
      try {
        return inner.decode(payload);
      } catch (err) {
        // the checksum matched, so these are the bytes we wrote: a codec bug, not damage
        throw new DamagedRecordError(`record cannot be decoded (${(err as Error).message})`);
      }
    },
  };
  checksummed.add(codec);
  return codec;
}

const checksummed = new WeakSet<object>();

/** whether `codec` (a database's encoder) is one checksummedCodec made */
export function isChecksummed(codec: unknown): codec is ValueCodec {
  return typeof codec === 'object' && codec !== null && checksummed.has(codec);
}
