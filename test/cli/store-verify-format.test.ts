// `conclave store verify`'s human output: the damaged records are named one per line (the store's
// file helpers are loaded by the command, not at every command's start-up, and handed to the formatter).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatVerify } from '../../runtime/cli/store.ts';
import { describeDamage } from '../../runtime/store/files.ts';
import type { VerifyReport } from '../../runtime/store/verify.ts';

const report: VerifyReport = {
  dataDir: '/tmp/d',
  ok: false,
  problem: 'damaged',
  name: 'n1',
  nodeId: 'id-1',
  clusterId: null,
  generation: 1,
  formatVersion: 3,
  checksummed: true,
  dbs: { log: { records: 2, bytes: 10 }, state: { records: 1, bytes: 5 } },
  damaged: [
    { db: 'log', key: 7, reason: 'checksum mismatch' },
    { db: 'state', key: null, reason: 'record count 2, read 1' },
  ],
  damagedCount: 3,
  checkMs: 4,
};

describe('store verify output', () => {
  it('names each damaged record and how many more there are', () => {
    const lines = formatVerify(report, describeDamage).split('\n');
    assert.deepEqual(lines.slice(3), [
      '  damaged: log 7 (checksum mismatch)',
      '  damaged: state: record count 2, read 1',
      '  … and 1 more damaged records',
      '  checked in 4 ms: 3 damaged record(s)',
    ]);
    assert.equal(lines[2], '  records: log 2, state 1 (15 bytes of values)');
  });
});
