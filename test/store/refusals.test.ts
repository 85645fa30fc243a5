// What openStore refuses, and that a refused directory is left exactly as it was.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import pino from 'pino';
import { openStore, STORE_FORMAT_VERSION, StoreError } from '../../runtime/store/index.ts';
import { checksummedCodec } from '../../runtime/store/frame.ts';
import { fingerprintDir, tmpDirs } from '../helpers/tmp.ts';
import { assertUntouched, settle } from './damage.ts';

const tmp = tmpDirs('conclave-store-refuse-');
after(() => tmp.cleanup());

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const storeModule = new URL('../../runtime/store/index.ts', import.meta.url).href;

function isCode(code: StoreError['code'], message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

async function makeStore(name = 'ctrl1'): Promise<string> {
  const dir = tmp.make();
  const s = await openStore({ dataDir: dir, name });
  await s.persist({ hardState: { term: 2, vote: null, commit: 0 }, entries: [{ index: 1, term: 2, type: 'noop', data: null }] });
  await s.close();
  return dir;
}

/** Edit a store's databases directly, bypassing NodeStore (to fabricate invalid or newer stores):
 * records are written checksummed, as a store of this format holds them. */
async function rawEdit(dir: string, fn: (db: (name: string) => ReturnType<ReturnType<typeof open>['openDB']>) => void) {
  const env = open({ path: dir, noSubdir: false, maxDbs: 16, overlappingSync: false });
  const encoder = checksummedCodec((env as unknown as { encoder: Parameters<typeof checksummedCodec>[0] }).encoder);
  env.transactionSync(() => fn((name) => env.openDB({ name, encoder } as { name: string })));
  await env.close();
}

describe('store refusals: LOCKED', () => {
  it('refuses a second open in the same process, and allows it after close', async () => {
    const dir = await makeStore();
    const s = await openStore({ dataDir: dir, name: 'ctrl1' });
    await assert.rejects(
      openStore({ dataDir: dir, name: 'ctrl1' }),
      isCode('LOCKED', new RegExp(`${dir}.*process ${process.pid}.*stop that process or choose another --data-dir`)),
    );
    assert.equal(s.lastIndex(), 1, 'the holder is unaffected');
    await s.close();
    const again = await openStore({ dataDir: dir, name: 'ctrl1' });
    await again.close();
  });

  it('refuses while another process holds the store, and takes over after it was SIGKILLed', async (t) => {
    const dir = await makeStore();
    const script = join(tmp.make(), 'hold.mts');
    writeFileSync(
      script,
      `import { openStore } from ${JSON.stringify(storeModule)};
const [dir, mode] = process.argv.slice(2);
try {
  const s = await openStore({ dataDir: dir, name: 'ctrl1' });
  process.stdout.write('OPENED ' + s.identity().nodeId + '\\n');
  if (mode === 'once') await s.close();
  else setInterval(() => {}, 1000); // hold it until killed
} catch (err) {
  process.stdout.write('REFUSED ' + err.code + ' ' + err.message + '\\n');
}
`,
    );
    const run = (mode: 'hold' | 'once') => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, dir, mode], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
      const firstLine = new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          if (buf.includes('\n')) resolve(buf.split('\n')[0]!);
        });
        child.on('exit', (code) => reject(new Error(`child exited (${code}) before reporting: ${buf}`)));
      });
      return { child, firstLine };
    };
    const children: ChildProcess[] = [];
    t.after(() => {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    });

    // this process holds it → the other process is refused
    const s = await openStore({ dataDir: dir, name: 'ctrl1' });
    const refused = run('once');
    children.push(refused.child);
    const line = await refused.firstLine;
    assert.match(line, new RegExp(`^REFUSED LOCKED data dir ${dir} is in use by process ${process.pid}`), line);
    assert.match(line, /stop that process or choose another --data-dir/);
    await s.close();

    // the other process holds it → we are refused, naming its pid
    const holder = run('hold');
    children.push(holder.child);
    assert.match(await holder.firstLine, /^OPENED /);
    await assert.rejects(
      openStore({ dataDir: dir, name: 'ctrl1' }),
      isCode('LOCKED', new RegExp(`process ${holder.child.pid}.*stop that process or choose another --data-dir`)),
    );

    // kill -9: the lock file stays behind, with a dead pid → taken over, with a warning
    const exited = new Promise((r) => holder.child.once('exit', r));
    holder.child.kill('SIGKILL');
    await exited;
    assert.match(readFileSync(join(dir, 'conclave.lock'), 'utf8'), new RegExp(`"pid":${holder.child.pid}`));
    const logged: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logged.push(JSON.parse(chunk.toString()));
        cb();
      },
    });
    const logger = pino({ level: 'warn' }, sink);
    const taken = await openStore({ dataDir: dir, name: 'ctrl1', logger });
    assert.equal(taken.lastIndex(), 1);
    const warn = logged.find((l) => l.level === 40);
    assert.ok(warn, `a warning was logged: ${JSON.stringify(logged)}`);
    assert.equal(warn.stalePid, holder.child.pid);
    assert.match(readFileSync(join(dir, 'conclave.lock'), 'utf8'), new RegExp(`"pid":${process.pid}`));
    await taken.close();
  });
});

describe('store refusals: NOT_A_STORE', () => {
  it('refuses a non-empty directory that is not a store, untouched', async () => {
    const dir = tmp.make();
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    mkdirSync(join(dir, 'sub'));
    await settle();
    const before = fingerprintDir(dir);
    await assert.rejects(
      openStore({ dataDir: dir, name: 'ctrl1' }),
      isCode('NOT_A_STORE', new RegExp(`data dir ${dir} is not empty and is not a Conclave store \\(it contains notes.txt, sub\\)`)),
    );
    assertUntouched(before, dir);
  });

  it('refuses a file as data dir, a missing store with create: false, and a foreign LMDB environment', async () => {
    const dir = tmp.make();
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    await assert.rejects(openStore({ dataDir: file, name: 'ctrl1' }), isCode('NOT_A_STORE', /is not a directory/));
    await assert.rejects(openStore({ dataDir: join(dir, 'nope'), name: 'ctrl1', create: false }), isCode('NOT_A_STORE', /no store/));

    const foreign = tmp.make();
    const env = open({ path: foreign, noSubdir: false, maxDbs: 4, overlappingSync: false });
    env.openDB({ name: 'users' }).putSync('alice', 1);
    await env.close();
    await settle();
    const before = fingerprintDir(foreign);
    await assert.rejects(openStore({ dataDir: foreign, name: 'ctrl1' }), isCode('NOT_A_STORE', /LMDB environment that is not a Conclave store \(databases: users\)/));
    assertUntouched(before, foreign);
  });
});

describe('store refusals: CORRUPT', () => {
  it('refuses a garbage data file, untouched', async () => {
    const dir = tmp.make();
    writeFileSync(join(dir, 'data.mdb'), Buffer.alloc(64 * 1024, 'garbage!'));
    await settle();
    const before = fingerprintDir(dir);
    await assert.rejects(openStore({ dataDir: dir, name: 'ctrl1' }), isCode('CORRUPT', /is not an LMDB file.*restore the data dir from a backup/));
    assertUntouched(before, dir);
  });

  it('refuses a truncated data file (which would otherwise SIGBUS), untouched', async () => {
    const dir = await makeStore();
    const s = await openStore({ dataDir: dir, name: 'ctrl1' });
    // enough data to make the file many pages long
    await s.applyState(1, Array.from({ length: 500 }, (_, i) => ({ key: `k${i}`, value: 'v'.repeat(200) })));
    await s.close();
    truncateSync(join(dir, 'data.mdb'), 3 * 4096);
    await settle();
    const before = fingerprintDir(dir);
    await assert.rejects(openStore({ dataDir: dir, name: 'ctrl1' }), isCode('CORRUPT', /is truncated/));
    assertUntouched(before, dir);
  });

  it('refuses an identity record that fails validation, untouched', async () => {
    const dir = await makeStore();
    await rawEdit(dir, (db) => {
      const id = db('identity').get('identity') as Record<string, unknown>;
      db('identity').putSync('identity', { ...id, nodeId: 'not-a-uuid' });
    });
    await settle();
    const before = fingerprintDir(dir);
    await assert.rejects(openStore({ dataDir: dir, name: 'ctrl1' }), isCode('CORRUPT', /identity record is invalid.*nodeId/));
    assertUntouched(before, dir);
  });

  it('refuses a missing identity record, untouched', async () => {
    const dir = await makeStore();
    await rawEdit(dir, (db) => {
      db('identity').removeSync('identity');
    });
    await settle();
    const before = fingerprintDir(dir);
    await assert.rejects(openStore({ dataDir: dir, name: 'ctrl1' }), isCode('CORRUPT', /identity record is missing/));
    assertUntouched(before, dir);
  });
});

describe('store refusals: NEWER_FORMAT and NAME_MISMATCH', () => {
  it('refuses a store of a newer format, naming both versions, untouched', async () => {
    const dir = await makeStore();
    await rawEdit(dir, (db) => {
      const id = db('identity').get('identity') as Record<string, unknown>;
      db('identity').putSync('identity', { ...id, formatVersion: STORE_FORMAT_VERSION + 1, someNewField: true });
    });
    await settle();
    const before = fingerprintDir(dir);
    await assert.rejects(
      openStore({ dataDir: dir, name: 'ctrl1' }),
      isCode('NEWER_FORMAT', new RegExp(`format version ${STORE_FORMAT_VERSION + 1}.*format version ${STORE_FORMAT_VERSION} at most: upgrade Conclave`)),
    );
    assertUntouched(before, dir);
  });

  it('refuses a store that belongs to another node name, untouched', async () => {
    const dir = await makeStore('ctrl1');
    await settle();
    const before = fingerprintDir(dir);
    await assert.rejects(openStore({ dataDir: dir, name: 'ctrl2' }), isCode('NAME_MISMATCH', new RegExp(`^data dir ${dir} belongs to node ctrl1, not ctrl2$`)));
    assertUntouched(before, dir);
  });
});
