// `conclave recover --data-dir D` through the real CLI, without NATS (it is offline): refusals with
// one `error:` line and the exit codes of CONTRACT.md — a store in use (1), a blank store (1), a
// corrupt one (2), a missing dir (2) — and a successful recovery's --json output.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { openStore } from '../../runtime/store/index.ts';
import { runCli } from '../helpers/cli.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-recover-cli-');
after(() => tmp.cleanup());
const CLUSTER = '0199aaaa-0000-7000-8000-0000000000c9';
const recover = (dataDir: string, json = false) => runCli(['recover', '--data-dir', dataDir, ...(json ? ['--json'] : [])]);

it('conclave recover: refusals and exit codes; --json on success', async () => {
  const root = tmp.make();
  const dataDir = join(root, 'n1');
  const store = await openStore({ dataDir, name: 'n1' });
  const self = { nodeId: store.identity().nodeId, name: 'n1', voter: true };
  await store.initializeCluster({ clusterId: CLUSTER, meta: { index: 1, term: 1, membership: { members: [self] } }, pairs: [['a', 1], ['b', 2]], hardState: { term: 1, vote: null, commit: 1 } });

  const blankDir = join(root, 'b1');
  await (await openStore({ dataDir: blankDir, name: 'b1' })).close();
  const badDir = join(root, 'bad');
  mkdirSync(badDir);
  writeFileSync(join(badDir, 'data.mdb'), Buffer.alloc(8192, 1));
  // n1 is in use by this (live) process while the refusals run (in parallel: fewer seconds)
  const [locked, blank, corrupt, missing] = await Promise.all([recover(dataDir), recover(blankDir), recover(badDir), recover(join(root, 'nope'))]);
  await store.close();

  assert.equal(locked.code, 1, locked.stderr);
  assert.match(locked.stderr, new RegExp(`^error: data dir .*n1 is in use by process ${process.pid} .*stop that process`, 'm'));
  assert.equal(blank.code, 1, blank.stderr);
  assert.match(blank.stderr, /^error: recover refused: the store in .*b1 \(node b1\) was never initialized and never joined a cluster/m);

  assert.equal(corrupt.code, 2, corrupt.stderr);
  assert.match(corrupt.stderr, /^error: the store in .*bad is corrupt: .*not an LMDB file/m);

  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /^error: there is no store in .*nope \(the directory does not exist\)/m);

  const ok = await recover(dataDir, true);
  assert.equal(ok.code, 0, ok.stderr);
  const r = JSON.parse(ok.stdout) as Record<string, unknown>;
  assert.equal(r.clusterId, CLUSTER);
  assert.equal(r.name, 'n1');
  assert.equal(r.generation, 2);
  assert.equal(r.commitIndex, 1);
  assert.equal(r.keys, 2);
});
