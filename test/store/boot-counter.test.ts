// The boot counter (runtime/store/boot.ts): every open of a store takes a number larger than at any
// open before, written durably before the store is used — a member's MACed peer messages carry it, so
// that a receiver tells its new process from copies of its old messages (replay protection). A store
// of an older release has no record and starts one; the clock set back does not make it shrink.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { open } from 'lmdb';
import { K_BOOT, nextBoot } from '../../runtime/store/boot.ts';
import { openStore } from '../../runtime/store/index.ts';
import { verifyStore } from '../../runtime/store/verify.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-boot-');
after(() => tmp.cleanup());

async function bootOf(dir: string): Promise<number> {
  const s = await openStore({ dataDir: dir, name: 'ctrl1' });
  try {
    return s.boot();
  } finally {
    await s.close();
  }
}

describe('store: boot counter', () => {
  it('grows at every open, and the store still verifies clean', async () => {
    const dir = join(tmp.make(), 'data');
    const boots = [await bootOf(dir), await bootOf(dir), await bootOf(dir)];
    assert.ok(boots[0]! >= 1);
    assert.ok(boots[1]! > boots[0]! && boots[2]! > boots[1]!, `${boots.join(' < ')}`);
    const report = await verifyStore(dir);
    assert.equal(report.ok, true, String(report.problem));
  });

  it('a store without the record (an older release) starts one at its next open and keeps its identity', async () => {
    const dir = join(tmp.make(), 'data');
    let s = await openStore({ dataDir: dir, name: 'ctrl1' });
    const nodeId = s.identity().nodeId;
    await s.close();
    const env = open({ path: dir, noSubdir: false, maxDbs: 16, overlappingSync: false });
    assert.equal(env.openDB({ name: 'identity', encoding: 'binary' }).removeSync(K_BOOT), true);
    await env.close();
    s = await openStore({ dataDir: dir, name: 'ctrl1' });
    assert.equal(s.identity().nodeId, nodeId);
    const started = s.boot();
    await s.close();
    assert.ok(started >= 1);
    assert.ok((await bootOf(dir)) > started);
  });

  it('the next one is the larger of the last plus one and the clock: neither a clock set back nor an old copy makes it shrink', () => {
    assert.deepEqual(nextBoot(undefined, 0), { boot: 1, at: new Date(0).toISOString() });
    const now = 1_800_000_000_000;
    assert.equal((nextBoot({ boot: 41, at: 'x' }, now) as { boot: number }).boot, now, 'a store put back from an old copy: the clock carries it past what was seen');
    assert.equal((nextBoot({ boot: now + 5000, at: 'x' }, now) as { boot: number }).boot, now + 5001, 'the clock went back: one more than the last');
    for (const bad of [{ boot: 0, at: 'x' }, { boot: -1, at: 'x' }, { boot: 1.5, at: 'x' }, { at: 'x' }, 7, null]) assert.equal(typeof nextBoot(bad, now), 'string');
  });
});
