// A host state larger than one bus message: it is stored as one record, and a follower that needs
// a snapshot must still get it (the record travels in pieces across chunks). The in-process bus
// enforces a 64 KiB max payload here, so a few hundred KB of state is many messages' worth.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReplicatedState } from 'conclave';
import { waitUntil } from '../helpers/cli.ts';
import { FAST, inProcessCluster } from '../helpers/inProcessCluster.ts';

const MAX_PAYLOAD = 64 * 1024;

/** a list of text blocks: its snapshot is as large as everything ever appended */
class Blocks implements ReplicatedState<{ append: string }, number, 'count' | 'digest', unknown, string[]> {
  blocks: string[] = [];
  restoredNonEmpty = 0;
  apply(command: { append: string }): number {
    this.blocks.push(command.append);
    return this.blocks.length;
  }
  query(q: 'count' | 'digest'): unknown {
    if (q === 'count') return this.blocks.length;
    return digest(this.blocks);
  }
  snapshot(): string[] {
    return this.blocks;
  }
  restore(snapshot: string[] | null): void {
    this.blocks = [...(snapshot ?? [])];
    if (this.blocks.length > 0) this.restoredNonEmpty++;
  }
}

function digest(blocks: string[]): string {
  let h = 0;
  for (const b of blocks) for (let i = 0; i < b.length; i += 97) h = (h * 31 + b.charCodeAt(i)) | 0;
  return `${blocks.length}:${h}`;
}

/** a block of about `bytes` characters, different for each `n` */
function block(n: number, bytes: number): string {
  return `${n}:`.padEnd(bytes, String.fromCharCode(97 + (n % 26)));
}

describe('a host state larger than one bus message', () => {
  const { start } = inProcessCluster('conclave-host-large-', { maxPayload: MAX_PAYLOAD });

  it('reaches a new member in a raft snapshot, in pieces', async () => {
    const raft = { ...FAST, snapshotEvery: 8 };
    const s1 = new Blocks();
    const a = await start('big1', { state: s1, raft });
    await a.init();
    await a.waitForLeader();
    // 24 blocks of 40 KB: a snapshot of about 1 MB, sixteen times the bus's largest message
    for (let n = 0; n < 24; n++) await a.propose({ append: block(n, 40_000) });
    await waitUntil(() => a.store.firstIndex() > 1, { what: 'the leader compacted its log' });
    const s2 = new Blocks();
    const b = await start('big2', { state: s2, raft });
    await a.cluster.add('big2');
    await waitUntil(() => s2.blocks.length === s1.blocks.length, { what: 'big2 holds every block', timeoutMs: 60_000 });
    assert.equal(s2.restoredNonEmpty > 0, true, 'big2 restored a non-empty snapshot (not a log replay from empty)');
    assert.equal(digest(s2.blocks), digest(s1.blocks));
    assert.equal(await b.read('digest', { stale: true }), digest(s1.blocks));
    // and it keeps up afterwards
    await a.propose({ append: block(99, 1000) });
    await waitUntil(() => s2.blocks.length === 25, { what: 'big2 applies the next command' });
  });
});
