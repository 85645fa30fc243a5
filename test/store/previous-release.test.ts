// Issue #15, acceptance 3: stores written by the previous release (v0.1.0, store format 1) open and
// migrate; a store of a newer format is refused. The stores are v0.1.0's own (test/data/stores,
// made by scripts/make-release-stores.ts): a 3-member cluster, one of them with a compacted log,
// and a blank node. Each test works on copies of them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { open } from 'lmdb';
import { BLANK, MEMBERS, STORES_TARBALL, STORES_TOP, type StoresManifest } from '../../scripts/make-release-stores.ts';
import { EXIT } from '../../runtime/errors.ts';
import { checksummedCodec } from '../../runtime/store/frame.ts';
import { MIGRATIONS, type Migration, openStore, STORE_FORMAT_VERSION } from '../../runtime/store/index.ts';
import { baseEnv, type CliResult, CliProcess, killLeftoverProcesses, runCli, runProgram, waitUntil } from '../helpers/cli.ts';
import { freePort, startNatsServer } from '../helpers/natsServer.ts';
import { installRelease } from '../helpers/previousRelease.ts';
import { fingerprintDir, tmpDirs } from '../helpers/tmp.ts';
import { assertUntouched, settle } from './damage.ts';

const tmp = tmpDirs('conclave-prev-release-');
after(async () => {
  await killLeftoverProcesses();
  tmp.cleanup();
});

/** the format v0.1.0 writes */
const OLD_FORMAT = 1;
/** a refusal takes a second on a quiet machine; starting a tsx process on the loaded 2-core machine can take many */
const CLI_DEADLINE_MS = 180_000;

let pristine: string;
let manifest: StoresManifest;
before(() => {
  const dir = tmp.make();
  execFileSync('tar', ['-xzf', STORES_TARBALL, '-C', dir]);
  pristine = join(dir, STORES_TOP);
  manifest = JSON.parse(readFileSync(join(pristine, 'manifest.json'), 'utf8')) as StoresManifest;
});

/** a fresh copy of v0.1.0's store of node `name` */
function copyOf(name: string): string {
  const dir = join(tmp.make(), name);
  // not LMDB's reader table, which reading the pristine copy made: the files as v0.1.0 left them
  cpSync(join(pristine, name), dir, { recursive: true, filter: (src) => basename(src) !== 'lock.mdb' });
  return dir;
}

interface RawRecord {
  db: string;
  key: string | number;
  bytes: Buffer;
}
const idOf = (r: { db: string; key: string | number }) => `${r.db}/${String(r.key)}`;

/** every record of every named database, as stored */
async function rawRecords(dir: string): Promise<RawRecord[]> {
  const env = open({ path: dir, noSubdir: false, maxDbs: 16, readOnly: true });
  const out: RawRecord[] = [];
  for (const db of [...env.getKeys({})].map(String)) {
    for (const { key, value } of env.openDB<Uint8Array, string | number>({ name: db, encoding: 'binary' }).getRange({})) {
      out.push({ db, key, bytes: Buffer.from(value) });
    }
  }
  await env.close();
  return out;
}

const isFramed = (b: Buffer) => b.length >= 4 && crc32(b.subarray(4)) === b.readUInt32BE(0);

/** v0.1.0's records decoded (plain msgpack, as lmdb-js encodes by default): "db/key" → value */
async function oldValues(dir: string): Promise<Map<string, unknown>> {
  const env = open({ path: dir, noSubdir: false, maxDbs: 16, readOnly: true });
  const out = new Map<string, unknown>();
  for (const db of [...env.getKeys({})].map(String)) {
    for (const { key, value } of env.openDB<unknown, string | number>({ name: db }).getRange({})) out.set(idOf({ db, key }), value);
  }
  await env.close();
  return out;
}

function entriesOfDb(values: Map<string, unknown>, db: string): Array<[string, unknown]> {
  return [...values].filter(([id]) => id.startsWith(`${db}/`)).map(([id, v]) => [id.slice(db.length + 1), v]);
}

/** raise the identity's formatVersion past this build's, its record checksummed as this format writes it */
async function makeNewerFormat(dir: string): Promise<void> {
  const env = open({ path: dir, noSubdir: false, maxDbs: 16, overlappingSync: false });
  const encoder = checksummedCodec((env as unknown as { encoder: Parameters<typeof checksummedCodec>[0] }).encoder);
  const identity = env.openDB({ name: 'identity', encoder } as { name: string });
  env.transactionSync(() => {
    const id = identity.get('identity') as Record<string, unknown>;
    identity.putSync('identity', { ...id, formatVersion: STORE_FORMAT_VERSION + 1 });
  });
  await env.close();
}

function assertOneErrorLine(r: CliResult, what: string, code: number, line: RegExp): void {
  const context = `${what}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
  assert.equal(r.signal, null, `no crash signal: ${context}`);
  assert.equal(r.code, code, `exit ${code}: ${context}`);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
  assert.equal(errors.length, 1, `one error line: ${context}`);
  assert.match(errors[0]!, line, context);
}

describe('stores written by v0.1.0', () => {
  it('the test data is what v0.1.0 writes: format 1, plain records, a snapshot in ctrl1', async () => {
    for (const name of [...MEMBERS, BLANK]) {
      const values = await oldValues(join(pristine, name));
      assert.equal((values.get('identity/identity') as { formatVersion: number }).formatVersion, OLD_FORMAT, name);
      assert.ok((await rawRecords(join(pristine, name))).every((r) => !isFramed(r.bytes)), `${name}: no record is checksummed`);
    }
    assert.deepEqual(manifest.snapshotted, ['ctrl1']);
    const ctrl1 = await oldValues(join(pristine, 'ctrl1'));
    assert.ok((ctrl1.get('snapshot/meta') as { index: number }).index > 10, 'ctrl1 compacted its log');
  });

  for (const name of [...MEMBERS, BLANK]) {
    it(`${name}: openStore migrates it in place to format ${STORE_FORMAT_VERSION}, every record checksummed, identity, raft state, log and kv kept`, async () => {
      const dir = copyOf(name);
      const before = await rawRecords(dir);
      const old = await oldValues(dir);
      const oldIdentity = old.get('identity/identity') as Record<string, unknown>;
      const blank = name === BLANK;

      const s = await openStore({ dataDir: dir, name });
      const identity = s.identity();
      assert.equal(identity.formatVersion, STORE_FORMAT_VERSION);
      assert.equal(identity.nodeId, oldIdentity.nodeId);
      if (!blank) assert.equal(identity.nodeId, manifest.nodeIds[name]);
      assert.equal(identity.name, name);
      assert.equal(identity.clusterId, blank ? null : manifest.clusterId);
      assert.equal(identity.generation, 1);
      assert.equal(identity.createdAt, oldIdentity.createdAt);
      assert.deepEqual(s.hardState(), old.get('hardstate/hardState'));
      assert.equal(s.appliedIndex(), old.get('hardstate/applied'));
      assert.deepEqual(s.snapshotMeta(), old.get('snapshot/meta') ?? null);
      const log = entriesOfDb(old, 'log').map(([k, v]) => {
        const [term, type, data] = v as [number, string, unknown];
        return { index: Number(k), term, type, data };
      });
      assert.equal(s.lastIndex(), log.at(-1)?.index ?? 0);
      assert.deepEqual(s.entries(s.firstIndex(), s.lastIndex() + 1), log);
      const state = Object.fromEntries(s.stateRange());
      assert.deepEqual(state, Object.fromEntries(entriesOfDb(old, 'state')));
      assert.deepEqual(state, blank ? {} : manifest.kv, 'the kv state v0.1.0 wrote');
      if (!blank) {
        assert.equal(s.appliedIndex(), manifest.statuses[name]!.appliedIndex);
        assert.equal(s.hardState().term, manifest.statuses[name]!.term);
      }
      const memberKey = s.memberKey().publicKey;
      await s.close();

      const afterRecords = await rawRecords(dir);
      assert.deepEqual(
        afterRecords.filter((r) => !isFramed(r.bytes)).map(idOf),
        [],
        'every record is checksummed',
      );
      const byId = new Map(afterRecords.map((r) => [idOf(r), r]));
      for (const r of before) {
        const now = byId.get(idOf(r));
        assert.ok(now, `${idOf(r)} is kept`);
        // the identity is re-encoded at the new format; every other record keeps its very bytes, framed
        if (idOf(r) !== 'identity/identity') assert.ok(now.bytes.subarray(4).equals(r.bytes), `${idOf(r)}: the same payload`);
      }
      assert.deepEqual(
        afterRecords
          .filter((r) => !before.some((b) => idOf(b) === idOf(r)))
          .map(idOf)
          .sort(),
        ['identity/boot', 'identity/memberKey'],
        'added: the member key and the boot counter, nothing else',
      );
      assert.ok(existsSync(join(dir, 'conclave.store')), 'the marker is written');

      // opened again: the current format, nothing to migrate, the same node
      const again = await openStore({ dataDir: dir, name });
      assert.equal(again.identity().nodeId, oldIdentity.nodeId);
      assert.equal(again.memberKey().publicKey, memberKey);
      assert.deepEqual(Object.fromEntries(again.stateRange()), state);
      await again.close();
    });
  }

  // migration.test.ts proves this on a hand-made store; here on v0.1.0's own, byte for byte
  const failures: Array<{ where: string; migrations: () => Migration[] }> = [
    {
      where: 'in the middle of the 1 → 2 step (half the records framed)',
      migrations: () => [
        {
          from: 1,
          description: 'frames half the records, then fails',
          up(ctx) {
            const log = ctx.raw('log');
            const keys = [...log.getKeys()];
            for (const key of keys.slice(0, keys.length / 2)) log.putSync(key, Buffer.concat([Buffer.alloc(4), log.getBinary(key)!]));
            throw new Error('migration failed midway');
          },
        },
        MIGRATIONS[2]!,
      ],
    },
    {
      where: 'in the 2 → 3 step, after the 1 → 2 step framed every record',
      migrations: () => [
        MIGRATIONS[1]!,
        {
          from: 2,
          description: 'drops the staging database and writes a state key, then fails',
          up(ctx) {
            MIGRATIONS[2]!.up(ctx);
            ctx.db('state').putSync('half', true);
            throw new Error('migration failed midway');
          },
        },
      ],
    },
  ];
  for (const { where, migrations } of failures) {
    it(`a migration that fails ${where} leaves ctrl2's store exactly as v0.1.0 wrote it; it migrates afterwards`, async () => {
      const dir = copyOf('ctrl2');
      const bytes = readFileSync(join(dir, 'data.mdb'));
      const records = await rawRecords(dir);
      // LMDB's reader table (lock.mdb) is made by any open, even a read-only one: not data
      const filesOf = () => readdirSync(dir).filter((f) => f !== 'lock.mdb').sort();
      const files = filesOf();
      await assert.rejects(openStore({ dataDir: dir, name: 'ctrl2', testHooks: { migrations: migrations() } }), /migration failed midway/);
      assert.ok(readFileSync(join(dir, 'data.mdb')).equals(bytes), 'data.mdb is byte for byte as v0.1.0 left it');
      assert.deepEqual(await rawRecords(dir), records, 'every record as v0.1.0 wrote it');
      assert.deepEqual(filesOf(), files, 'no file added (no marker, no lock left)');
      const s = await openStore({ dataDir: dir, name: 'ctrl2' });
      assert.equal(s.identity().formatVersion, STORE_FORMAT_VERSION);
      assert.equal(s.stateGet('half'), undefined);
      assert.deepEqual(Object.fromEntries(s.stateRange()), manifest.kv);
      await s.close();
    });
  }
});

describe('stores written by v0.1.0, through the CLI', () => {
  it('`conclave run` of this build on the three v0.1.0 stores (and the blank one) resumes the same cluster, and serves what v0.1.0 wrote', { timeout: 10 * 60_000 }, async () => {
    const nats = await startNatsServer();
    const env = baseEnv({ NATS_URL: nats.url, CONCLAVE_PREFIX: 'prevrel' });
    const cli = (args: string[]) => runCli(args, { env, timeoutMs: CLI_DEADLINE_MS });
    const blankId = ((await oldValues(join(pristine, BLANK))).get('identity/identity') as { nodeId: string }).nodeId;
    const procs = new Map<string, CliProcess>();
    try {
      for (const name of [...MEMBERS, BLANK]) {
        const config = join(tmp.make(), `${name}.json`);
        // v0.1.0 ran ctrl1 with snapshotEvery 10; the others with the default
        writeFileSync(config, JSON.stringify({ name, dataDir: copyOf(name), log: { level: 'info' }, raft: name === 'ctrl1' ? { snapshotEvery: 10 } : {} }));
        procs.set(name, new CliProcess(['run', '--config', config], { env }));
      }
      await Promise.all([...procs.values()].map((p) => p.waitForOutput(/controller .* is running/, CLI_DEADLINE_MS)));
      for (const [name, p] of procs) assert.match(p.stdout + p.stderr, /store format migrated/, `${name} migrated its store\n${p.output()}`);

      type Status = { nodeId: string; clusterId: string | null; phase: string; role: string; leader: string | null; members: Array<{ name: string; nodeId: string; voter: boolean }>; clusterVersion?: { version: number; authentication: string } };
      const status = async (name: string): Promise<Status | null> => {
        const r = await cli(['status', '--node', name, '--json']);
        return r.code === 0 ? (JSON.parse(r.stdout) as Status) : null;
      };
      const statuses = new Map<string, Status>();
      await waitUntil(
        async () => {
          for (const name of MEMBERS) {
            const s = await status(name);
            if (s) statuses.set(name, s);
          }
          const leaders = new Set([...statuses.values()].map((s) => s.leader));
          return statuses.size === MEMBERS.length && leaders.size === 1 && !leaders.has(null);
        },
        { what: 'the three members agree on a leader', timeoutMs: 120_000, context: () => JSON.stringify([...statuses]) },
      );
      for (const name of MEMBERS) {
        const s = statuses.get(name)!;
        assert.equal(s.clusterId, manifest.clusterId, `${name}: the cluster id v0.1.0 made`);
        assert.equal(s.nodeId, manifest.nodeIds[name]);
        assert.equal(s.phase, 'member');
        assert.deepEqual(
          s.members.map((m) => [m.name, m.nodeId, m.voter]).sort(),
          MEMBERS.map((n) => [n, manifest.nodeIds[n], true]),
        );
      }
      const blank = await status(BLANK);
      assert.deepEqual([blank?.nodeId, blank?.clusterId, blank?.phase], [blankId, null, 'uninitialized']);

      // every member runs this build: the leader raises the cluster version and commits the keys the
      // members state (issue #15), so peer messages and forwards are authenticated from then on
      await waitUntil(
        async () => {
          const all = await Promise.all(MEMBERS.map((n) => status(n)));
          return all.every((st) => st?.clusterVersion?.version === 2 && st.clusterVersion.authentication === 'on');
        },
        { what: 'cluster version 2 with every member key committed', timeoutMs: 60_000 },
      );
      // linearizable reads through every member (a follower forwards them to the leader), and each member's own state (--stale)
      const leader = statuses.get('ctrl1')!.leader!;
      const keys = [...Object.keys(manifest.kv), ...manifest.deleted];
      for (const key of keys) {
        for (const via of MEMBERS) {
          for (const stale of [false, true]) {
            const args = ['kv', 'get', key, '--via', via, '--json', ...(stale ? ['--stale'] : [])];
            const r = await cli(args);
            assert.equal(r.code, 0, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
            const got = JSON.parse(r.stdout) as { found: boolean; value?: unknown };
            if (manifest.deleted.includes(key)) assert.equal(got.found, false, `${key} was deleted by v0.1.0`);
            else assert.deepEqual(got, { key, found: true, value: manifest.kv[key] }, args.join(' '));
          }
        }
      }
      // and the upgraded cluster commits (this build takes writes from an operator key: baseEnv has it)
      const put = await cli(['kv', 'put', 'after-upgrade', 'yes', '--via', leader]);
      assert.equal(put.code, 0, put.stderr);
      await waitUntil(
        async () => {
          const gets = await Promise.all(MEMBERS.map((via) => cli(['kv', 'get', 'after-upgrade', '--via', via, '--stale'])));
          return gets.every((g) => g.stdout.trim() === 'yes');
        },
        { what: 'every member applied the write made after the upgrade', timeoutMs: 60_000 },
      );
    } finally {
      await Promise.all([...procs.values()].map((p) => p.kill('SIGTERM')));
      await nats.stop();
    }
  });

  it('a v0.1.0 store migrated and then raised past this format is refused by `conclave run` (and `store verify`, `recover`): one error line naming both formats, exit 2, untouched', { timeout: 5 * 60_000 }, async () => {
    const dir = copyOf('ctrl1');
    const s = await openStore({ dataDir: dir, name: 'ctrl1' });
    await s.close();
    await makeNewerFormat(dir);
    await settle();
    const before = fingerprintDir(dir);
    const nats = `nats://127.0.0.1:${await freePort()}`;
    // one after the other: each must leave the store as found for the next
    for (const args of [['run', '--name', 'ctrl1', '--data-dir', dir, '--nats', nats], ['store', 'verify', '--data-dir', dir], ['recover', '--data-dir', dir]]) {
      const r = await runCli(args, { timeoutMs: CLI_DEADLINE_MS });
      assertOneErrorLine(
        r,
        `conclave ${args.join(' ')} on a newer store`,
        EXIT.usage,
        new RegExp(`^error: the store in ${dir} has format version ${STORE_FORMAT_VERSION + 1}, but this Conclave supports format version ${STORE_FORMAT_VERSION} at most: upgrade Conclave to open it \\(the store was left unchanged\\)$`),
      );
      assertUntouched(before, dir, `${dir} after conclave ${args[0]}`);
    }
  });

  it('v0.1.0 refuses a store this build migrated (the downgrade path): exit 2, one error line, the store untouched', { timeout: 5 * 60_000 }, async () => {
    const release = await installRelease();
    try {
      for (const name of ['ctrl1', BLANK]) {
        const dir = copyOf(name);
        const s = await openStore({ dataDir: dir, name });
        await s.close();
        await settle();
        const before = fingerprintDir(dir);
        const r = await runProgram(process.execPath, ['--import', 'tsx', release.main, 'run', '--name', name, '--data-dir', dir], {
          label: `conclave ${release.version} run --name ${name}`,
          env: baseEnv({ NATS_URL: `nats://127.0.0.1:${await freePort()}` }),
          timeoutMs: CLI_DEADLINE_MS,
        });
        // v0.1.0 cannot decode a checksummed identity record, so it calls the store corrupt (not
        // "newer"): a refusal all the same, and the store is kept for the build that wrote it
        assertOneErrorLine(r, `v0.1.0 run on ${name}'s migrated store`, EXIT.usage, new RegExp(`^error: the store in ${dir} is corrupt: reading it failed`));
        assertUntouched(before, dir);
      }
    } finally {
      await release.remove();
    }
  });
});
