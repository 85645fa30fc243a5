import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { checkHistory } from './checker.ts';
import { parseConclave, parseJepsen } from './formats.ts';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.ts';

const root = new URL('../..', import.meta.url).pathname;
const jepsenDir = join(root, '../shared/testdata/linearizability/jepsen-etcd');

/** a history written the way a reader thinks of it: [process, call, return | null (unknown), operation, key?] */
type Row = [string, number, number | null, string];
function history(rows: Row[]): string {
  const events: Array<{ time: number; line: object }> = [];
  for (const [process, call, ret, what] of rows) {
    const [f, key, ...args] = what.split(' ');
    const parse = (s: string | undefined) => (s === undefined ? undefined : JSON.parse(s));
    const invoke: Record<string, unknown> = { process, type: 'invoke', f, key, time: call };
    if (f === 'put') invoke.value = parse(args[0]);
    if (f === 'cas') Object.assign(invoke, { expected: parse(args[0]), value: parse(args[1]) });
    events.push({ time: call, line: invoke });
    if (ret === null) continue;
    const done: Record<string, unknown> = { process, type: 'ok', f, key, time: ret };
    const result = args[f === 'cas' ? 2 : f === 'put' ? 1 : 0];
    if (f === 'get') Object.assign(done, result === 'absent' ? { found: false } : { found: true, value: parse(result) });
    if (f === 'cas') done.swapped = result === 'swapped';
    if (result === 'refused') done.type = 'fail';
    events.push({ time: ret, line: done });
  }
  events.sort((a, b) => a.time - b.time);
  return events.map((e) => JSON.stringify(e.line)).join('\n');
}
const verdictOf = (rows: Row[]) => checkHistory(parseConclave(history(rows))).verdict;

describe('linearizability checker: the Jepsen etcd histories with known verdicts', () => {
  const verdicts = readFileSync(join(jepsenDir, 'verdicts.tsv'), 'utf8').trim().split('\n').slice(1);
  test('the test data is all there (52 histories)', () => {
    assert.equal(verdicts.length, 52);
    assert.equal(readdirSync(jepsenDir).filter((f) => f.endsWith('.log')).length, 52);
  });
  for (const line of verdicts) {
    const [file, expected] = line.split('\t') as [string, string];
    test(`${file}: ${expected === 'true' ? 'linearizable' : 'not linearizable'}`, () => {
      const operations = parseJepsen(readFileSync(join(jepsenDir, file), 'utf8'));
      const result = checkHistory(operations, { timeoutMs: 60_000, minimize: false });
      assert.equal(result.verdict, expected === 'true' ? 'linearizable' : 'not linearizable', `checked in ${result.elapsedMs.toFixed(0)} ms`);
    });
  }
});

describe('linearizability checker: small histories made by hand', () => {
  test('sequential writes and reads are linearizable; an absent key reads absent', () => {
    assert.equal(verdictOf([['a', 0, 1, 'get x absent'], ['a', 2, 3, 'put x 1'], ['b', 4, 5, 'get x 1']]), 'linearizable');
  });
  test('a stale read (the old value after a newer write completed) is not', () => {
    assert.equal(verdictOf([['a', 0, 1, 'put x 1'], ['a', 2, 3, 'put x 2'], ['b', 4, 5, 'get x 1']]), 'not linearizable');
  });
  test('a read concurrent with a write may see either value', () => {
    assert.equal(verdictOf([['a', 0, 1, 'put x 1'], ['a', 2, 6, 'put x 2'], ['b', 3, 4, 'get x 1'], ['c', 3, 5, 'get x 2']]), 'linearizable');
  });
  test('two reads that disagree on the order of two concurrent writes are not', () => {
    // c sees 2 then 1, d sees 1 then 2: no single order of the writes explains both
    const rows: Row[] = [
      ['a', 0, 10, 'put x 1'],
      ['b', 0, 10, 'put x 2'],
      ['c', 11, 12, 'get x 2'],
      ['d', 11, 12, 'get x 1'],
    ];
    assert.equal(verdictOf(rows), 'not linearizable');
  });
  test('a lost write (acknowledged, then never seen, with no other write after it) is not', () => {
    assert.equal(verdictOf([['a', 0, 1, 'put x 1'], ['a', 2, 3, 'put x 2'], ['b', 4, 5, 'get x 1'], ['b', 6, 7, 'get x 1']]), 'not linearizable');
  });
  test('compare-and-set: two swaps from the same expected value cannot both succeed', () => {
    assert.equal(verdictOf([['a', 0, 1, 'put x 0'], ['b', 2, 5, 'cas x 0 1 swapped'], ['c', 2, 5, 'cas x 0 2 swapped']]), 'not linearizable');
    assert.equal(verdictOf([['a', 0, 1, 'put x 0'], ['b', 2, 5, 'cas x 0 1 swapped'], ['c', 2, 5, 'cas x 0 2 not-swapped']]), 'linearizable');
  });
  test('compare-and-set: not swapping while the value matched is not linearizable; a refused one observed nothing', () => {
    assert.equal(verdictOf([['a', 0, 1, 'put x 0'], ['b', 2, 3, 'cas x 0 1 not-swapped']]), 'not linearizable');
    assert.equal(verdictOf([['a', 0, 1, 'put x 0'], ['b', 2, 3, 'cas x 0 1 refused'], ['b', 4, 5, 'get x 0']]), 'linearizable');
    // a refused write had no effect: reading its value is not linearizable
    assert.equal(verdictOf([['a', 0, 1, 'put x 0'], ['b', 2, 3, 'put x 1 refused'], ['b', 4, 5, 'get x 1']]), 'not linearizable');
  });
  test('an operation with an unknown outcome may take effect late, or never', () => {
    assert.equal(verdictOf([['a', 0, null, 'put x 1'], ['b', 5, 6, 'get x absent'], ['b', 7, 8, 'get x 1']]), 'linearizable');
    assert.equal(verdictOf([['a', 0, null, 'put x 1'], ['b', 5, 6, 'get x absent'], ['b', 7, 8, 'get x absent']]), 'linearizable');
    // ... but only once: after it was seen and overwritten it cannot come back
    assert.equal(verdictOf([['a', 0, null, 'put x 1'], ['b', 5, 6, 'get x 1'], ['b', 7, 8, 'put x 2'], ['b', 9, 10, 'get x 1']]), 'not linearizable');
    // and never before its invocation
    assert.equal(verdictOf([['b', 0, 1, 'get x 1'], ['a', 2, null, 'put x 1']]), 'not linearizable');
  });
  test('delete: a read after a completed delete sees the key absent', () => {
    assert.equal(verdictOf([['a', 0, 1, 'put x 1'], ['a', 2, 3, 'del x'], ['b', 4, 5, 'get x absent']]), 'linearizable');
    assert.equal(verdictOf([['a', 0, 1, 'put x 1'], ['a', 2, 3, 'del x'], ['b', 4, 5, 'get x 1']]), 'not linearizable');
  });
  test('keys are checked apart: a violation on one key is reported for that key only', () => {
    const result = checkHistory(parseConclave(history([['a', 0, 1, 'put x 1'], ['a', 2, 3, 'put y 1'], ['a', 4, 5, 'put x 2'], ['b', 6, 7, 'get x 1'], ['c', 6, 7, 'get y 1']])));
    assert.equal(result.verdict, 'not linearizable');
    assert.deepEqual(result.keys.map((k) => [k.key, k.verdict]), [['x', 'not linearizable'], ['y', 'linearizable']]);
  });
  test('the conflicting set is small: the stale read and the writes it contradicts, not the unrelated history', () => {
    const rows: Row[] = [['w', 0, 1, 'put x 0']];
    for (let i = 1; i <= 30; i++) rows.push(['r', 10 * i, 10 * i + 1, 'get x 0']);
    rows.push(['w', 400, 401, 'put x 1'], ['r', 402, 403, 'get x 0']);
    const result = checkHistory(parseConclave(history(rows)));
    const conflict = result.keys[0]!.conflict!.map((o) => `${o.input.f}@${o.call}`);
    assert.deepEqual(conflict, ['put@0', 'put@400', 'get@402']);
  });
  test('a history too hard for the time bound is "unknown", not a guess', () => {
    const operations = parseJepsen(readFileSync(join(jepsenDir, 'etcd_002.log'), 'utf8'));
    assert.equal(checkHistory(operations, { timeoutMs: 1, minimize: false }).verdict, 'unknown');
  });
});

describe('npm run -s check', () => {
  const run = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(root, 'test/linearizability/cli.ts'), ...args], { encoding: 'utf8', cwd: root });
  test('exit 0 / 1 / 2 for linearizable / not linearizable / unknown, with the conflict rendered as text and HTML', () => {
    const ok = run([join(jepsenDir, 'etcd_018.log')]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^linearizable/);
    const dir = makeTmpDir();
    try {
      const html = join(dir, 'conflict.html');
      const bad = run([join(jepsenDir, 'etcd_004.log'), '--html', html]);
      assert.equal(bad.status, 1, bad.stderr);
      assert.match(bad.stdout, /^not linearizable/);
      assert.match(bad.stdout, /these \d+ operations cannot be ordered/);
      assert.match(readFileSync(html, 'utf8'), /<h2>key &quot;register&quot;: not linearizable<\/h2>/);
      const file = join(dir, 'history.jsonl');
      writeFileSync(file, history([['a', 0, 1, 'put x 1'], ['a', 2, 3, 'put x 2'], ['b', 4, 5, 'get x 1']]));
      const kv = run([file, '--format', 'conclave']);
      assert.equal(kv.status, 1);
      assert.match(kv.stdout, /get\(x\) → 1/);
    } finally {
      removeTmpDir(dir);
    }
    const unknown = run([join(jepsenDir, 'etcd_002.log'), '--timeout-ms', '1']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stdout, /^unknown/);
  });
  test('bad input: one error line, exit 2', () => {
    for (const args of [['/no/such/file'], [join(jepsenDir, 'etcd_004.log'), '--format', 'xml'], [], [join(jepsenDir, 'verdicts.tsv'), '--format', 'conclave']]) {
      const r = run(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^error: /);
    }
  });
});
