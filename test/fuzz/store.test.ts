// Fuzzing the store files (issue 17, "keep them fixed"): a real store's data.mdb is truncated at a
// random offset, has a random page zeroed or overwritten, or random bytes flipped; then a child
// process opens it as a node does and reads everything. Property: never a crash signal; either
// the store opens with its identity and every record intact, or it is refused with a StoreError
// that exits 2 with one line. Never a silent blank store (a new node id).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, truncateSync, writeSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { exitCodeFor } from '../../runtime/errors.ts';
import { fuzzParams } from '../helpers/fuzz.ts';
import { ROOT } from '../helpers/cli.ts';
import { tmpDirs } from '../helpers/tmp.ts';
import { makeMemberStore, pageSizeOf } from '../store/damage.ts';

const tmp = tmpDirs('conclave-fuzz-store-');
const WORKER = fileURLToPath(new URL('./store-worker.ts', import.meta.url));

type Answer = { opened: true; nodeId: string; clusterId: string; keys: number; digest: string } | { opened: false; storeError: boolean; code: unknown; message: string };

/** the worker process, restarted after a crash (which is reported as a failure first) */
class Worker {
  #child = this.#spawn();
  #lines: AsyncIterator<string> = createInterface({ input: this.#child.stdout! })[Symbol.asyncIterator]();
  #stderr = '';

  #spawn() {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr!.on('data', (d) => (this.#stderr += d));
    return child;
  }

  async open(dataDir: string): Promise<Answer> {
    this.#child.stdin!.write(`${dataDir}\n`);
    const next = await this.#lines.next();
    if (next.done) {
      const dead = this.#child;
      if (dead.exitCode === null && dead.signalCode === null) await once(dead, 'exit');
      const stderr = this.#stderr;
      this.#child = this.#spawn();
      this.#lines = createInterface({ input: this.#child.stdout! })[Symbol.asyncIterator]();
      this.#stderr = '';
      throw new Error(`the process opening ${dataDir} died (signal ${dead.signalCode}, exit ${dead.exitCode}): ${stderr.slice(0, 500)}`);
    }
    return JSON.parse(next.value) as Answer;
  }

  stop(): void {
    this.#child.stdin!.end();
  }
}

let base = '';
let original: Answer;
let worker: Worker;
let size = 0;
let pageSize = 4096;

before(async () => {
  base = join(tmp.make(), 'n1');
  await makeMemberStore(base);
  worker = new Worker();
  original = await worker.open(base);
  assert.ok(original.opened, JSON.stringify(original));
  size = statSync(join(base, 'data.mdb')).size;
  pageSize = pageSizeOf(base);
});
after(() => {
  worker?.stop();
  tmp.cleanup();
});

type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'zero-page'; page: number }
  | { kind: 'random-page'; page: number; seed: number }
  | { kind: 'flip'; flips: Array<{ at: number; bit: number }> };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('zero-page' as const), page: fc.nat() }),
  fc.record({ kind: fc.constant('random-page' as const), page: fc.nat(), seed: fc.nat() }),
  fc.record({ kind: fc.constant('flip' as const), flips: fc.array(fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }), { minLength: 1, maxLength: 16 }) }),
);

function copyStore(): string {
  const dir = join(tmp.make(), 'n1');
  mkdirSync(dir);
  for (const f of readdirSync(base)) copyFileSync(join(base, f), join(dir, f));
  return dir;
}

function write(file: string, at: number, bytes: Buffer): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, bytes, 0, bytes.length, at);
  closeSync(fd);
}

function mutate(dir: string, m: Mutation): void {
  const file = join(dir, 'data.mdb');
  const pages = size / pageSize;
  switch (m.kind) {
    case 'truncate':
      truncateSync(file, m.at % size);
      return;
    case 'zero-page':
      write(file, (m.page % pages) * pageSize, Buffer.alloc(pageSize));
      return;
    case 'random-page': {
      const bytes = Buffer.alloc(pageSize);
      let x = m.seed >>> 0;
      for (let i = 0; i < pageSize; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        bytes[i] = x >>> 24;
      }
      write(file, (m.page % pages) * pageSize, bytes);
      return;
    }
    case 'flip': {
      const data = readFileSync(file);
      for (const f of m.flips) data[f.at % size]! ^= 1 << f.bit;
      write(file, 0, data);
      return;
    }
  }
}

it('a mutated store file is opened intact or refused with exit 2 and one line, never a crash or a blank store', async () => {
  const seen = { intact: 0, refused: 0 };
  await fc.assert(
    fc.asyncProperty(mutation, async (m) => {
      const dir = copyStore();
      mutate(dir, m);
      const a = await worker.open(dir);
      if (a.opened) {
        assert.equal(a.nodeId, original.opened && original.nodeId, 'the same node (never a blank store with a new node id)');
        assert.deepEqual(a, original, 'identity and every record intact');
        seen.intact++;
      } else {
        assert.ok(a.storeError, `a StoreError, not ${a.message}`);
        assert.equal(exitCodeFor(String(a.code)), 2, `exit 2 for ${String(a.code)}: ${a.message}`);
        assert.doesNotMatch(a.message, /\n/, 'one line');
        seen.refused++;
      }
    }),
    fuzzParams(20),
  );
  console.log(`mutated stores: ${seen.intact} opened intact, ${seen.refused} refused`);
});
