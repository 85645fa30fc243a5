// The walk of every record of a store: what `conclave run` checks before it opens a store, and what
// `conclave store verify` reports. Plain JavaScript, because the child process that runs it
// (verify-child.mjs, `node verify-child.mjs DATA_DIR`) starts in tens of milliseconds where a tsx
// child costs ~0.4 s; the controller runs the same function in its own process when the store is
// unchanged since this software closed it cleanly (cleanClose.ts).
//
// It opens the environment read-only, reads every record of every database as raw bytes (which
// touches every page reachable from the roots, overflow pages included) and checks each record's
// frame (runtime/store/frame.ts: [CRC-32 big-endian][payload]) when the store is framed (format ≥ 2).
// It also compares each database's record count with the count LMDB keeps in its parent page.
// Returns { framed, identity, hasIdentity, dbs: {name: {records, bytes}}, damaged: [{db, key, reason}],
// damagedCount }; throws what LMDB throws when it refuses to read.
import { crc32 } from 'node:zlib';

const MAX_LISTED = 100;
/** payload of a framed record, or null when its checksum does not match (frame.ts `unframe`) */
function unframe(buf) {
  if (buf.length < 4) return null;
  const payload = buf.subarray(4);
  return crc32(payload) === buf.readUInt32BE(0) ? payload : null;
}

/** `lmdb`: the open and compareKeys of the lmdb package (the caller loads it: CommonJS in the child, as the store does in-process) */
export function walkStore({ open, compareKeys }, dataDir) {
  const env = open({ path: dataDir, noSubdir: false, maxDbs: 16, readOnly: true });
  try {
    const names = [...env.getKeys({})].map(String);
    const rawIdentity = names.includes('identity') ? env.openDB({ name: 'identity', encoding: 'binary' }).getBinary('identity') : undefined;
    // framed (format ≥ 2) unless the identity is a readable format-0/1 record; a damaged identity
    // counts as framed, so that every other record is still checked
    let framed = true;
    let identity = null;
    if (rawIdentity) {
      const payload = unframe(Buffer.from(rawIdentity));
      identity = payload === null ? null : decodeOrNull(env, payload);
      if (identity === null || !(identity.formatVersion >= 2)) {
        const legacy = decodeOrNull(env, rawIdentity);
        if (legacy !== null && typeof legacy.formatVersion === 'number' && legacy.formatVersion < 2) {
          framed = false;
          identity = legacy;
        } else identity = null;
      }
    }
    const dbs = {};
    const damaged = [];
    let damagedCount = 0;
    for (const name of names) {
      const db = env.openDB({ name, encoding: 'binary' });
      let records = 0;
      let bytes = 0;
      let prev;
      for (const { key, value } of db.getRange({})) {
        records++;
        bytes += value.length;
        // keys are not checksummed: a damaged key shows as keys out of order or a gap in the log
        const misplaced = prev !== undefined && (compareKeys(prev, key) >= 0 || (name === 'log' && key !== prev + 1));
        if (misplaced) {
          damagedCount++;
          if (damaged.length < MAX_LISTED) damaged.push({ db: name, key, reason: `key out of place after ${JSON.stringify(prev)}` });
        }
        prev = key;
        if (framed && unframe(Buffer.from(value.buffer, value.byteOffset, value.length)) === null) {
          damagedCount++;
          if (damaged.length < MAX_LISTED) damaged.push({ db: name, key, reason: 'checksum mismatch' });
        }
      }
      // LMDB counts each database's entries in its parent page: a damaged page that LMDB reads as
      // a smaller (or larger) tree shows up as a count that does not match what could be read
      const recorded = db.getStats().entryCount;
      if (recorded !== records) {
        damagedCount++;
        damaged.push({ db: name, key: null, reason: `${recorded} records recorded, ${records} readable: a page is damaged` });
      }
      dbs[name] = { records, bytes };
    }
    return { framed, identity, hasIdentity: rawIdentity !== undefined, dbs, damaged, damagedCount };
  } finally {
    env.close();
  }
}

function decodeOrNull(env, bytes) {
  try {
    const v = env.encoder.decode(bytes);
    return v !== null && typeof v === 'object' ? v : null;
  } catch {
    return null;
  }
}

