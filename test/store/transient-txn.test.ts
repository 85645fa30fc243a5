// A write transaction that LMDB aborts in its own bookkeeping (MDB_BAD_TXN: lmdb-js's free-space
// list, seen killing a follower after ≈60k puts at 64 in flight in the bench) is tried again: the
// write lands, a warning says so, and nothing is lost. One that keeps failing is an IO error that
// leaves the store usable once LMDB recovers. The fault is planted in lmdb-js's transactionSync,
// (testHooks.env) in the store's own environment's transactionSync, where the real one surfaces
// (its commit throws).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import type { RootDatabase } from 'lmdb';
import pino from 'pino';
import { openStore, StoreError } from '../../runtime/store/index.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-store-transient-');
after(() => tmp.cleanup());

type Txn = (fn: () => unknown, flags?: number) => unknown;

/** a switchable fault in the store's own environment: the next `failures` transactions throw as lmdb-js's commit does for the freelist fault */
class Plant {
  left = 0;
  calls = 0;
  error = 'MDB_BAD_TXN: Transaction must abort, has a child, or is invalid: reserved freelist had a data entry with zero-size, last id 1\n';
  readonly hooks = {
    env: (env: RootDatabase) => {
      const real = (env.transactionSync as Txn).bind(env);
      (env as unknown as { transactionSync: Txn }).transactionSync = (fn, flags) => {
        this.calls++;
        if (this.left > 0) {
          this.left--;
          throw new Error(this.error);
        }
        return real(fn, flags);
      };
    },
  };
}

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()));
      cb();
    },
  });
  return { lines, logger: pino({ level: 'warn' }, sink) };
}

describe('store: a transaction LMDB aborts in its bookkeeping', () => {
  it('is tried again: the write lands, a warning says so, and it survives a restart', async () => {
    const dir = join(tmp.make(), 'data');
    const { lines, logger } = capture();
    const plant = new Plant();
    let s = await openStore({ dataDir: dir, name: 'n1', logger, testHooks: plant.hooks });
    plant.left = 1;
    await s.applyState(7, [{ key: 'k', value: { v: 1 } }]);
    assert.equal(plant.left, 0, 'the planted failure happened');
    assert.deepEqual(s.stateGet('k'), { v: 1 });
    assert.equal(s.appliedIndex(), 7);
    const warned = lines.find((l) => l.level === 40 && /trying again/.test(String(l.msg)));
    assert.ok(warned, `a warning was logged: ${JSON.stringify(lines)}`);
    assert.ok(lines.some((l) => l.level === 40 && /succeeded on attempt 2/.test(String(l.msg))));
    await s.close();
    s = await openStore({ dataDir: dir, name: 'n1' });
    assert.deepEqual(s.stateGet('k'), { v: 1 });
    assert.equal(s.appliedIndex(), 7);
    await s.close();
  });

  it('one that keeps failing is an IO error, writes nothing, and the store takes the next write', async () => {
    const dir = join(tmp.make(), 'data');
    const { logger } = capture();
    const plant = new Plant();
    const s = await openStore({ dataDir: dir, name: 'n1', logger, testHooks: plant.hooks });
    plant.left = 100;
    plant.calls = 0;
    await assert.rejects(s.applyState(3, [{ key: 'lost', value: 1 }]), (err: unknown) => err instanceof StoreError && err.code === 'IO' && /MDB_BAD_TXN/.test(err.message));
    assert.equal(plant.calls, 3, 'three attempts in all');
    plant.left = 0;
    assert.equal(s.stateGet('lost'), undefined);
    assert.equal(s.appliedIndex(), 0);
    assert.equal(s.damage(), null, 'not taken for damage');
    await s.applyState(3, [{ key: 'kept', value: 2 }]);
    assert.equal(s.stateGet('kept'), 2);
    await s.close();
  });

  it('other write failures are not tried again', async () => {
    const dir = join(tmp.make(), 'data');
    const plant = new Plant();
    const s = await openStore({ dataDir: dir, name: 'n1', testHooks: plant.hooks });
    plant.error = 'EACCES: permission denied';
    plant.left = 100;
    plant.calls = 0;
    await assert.rejects(s.applyState(1, [{ key: 'x', value: 1 }]), (err: unknown) => err instanceof StoreError && err.code === 'IO');
    assert.equal(plant.calls, 1);
    plant.left = 0;
    await s.close();
  });
});
