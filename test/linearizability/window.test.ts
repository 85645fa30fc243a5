import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkHistory } from './checker.ts';
import { renderHtml } from './render.ts';
import { type ClientEvent, clientOperations, crashIncident, inWindow, lostWrites, renderIncidents, renderIncidentsHtml, sightingIncident } from './window.ts';

/** [process, call, return | null (never answered), operation, outcome]; outcome: ok result, `fail CODE` or `info CODE` */
type Row = [string, number, number | null, string, string];
function events(rows: Row[]): ClientEvent[] {
  const out: ClientEvent[] = [];
  for (const [process, call, ret, what, outcome] of rows) {
    const [f, key, ...args] = what.split(' ') as [ClientEvent['f'], string, ...string[]];
    const invoke: ClientEvent = { process, type: 'invoke', f, key, time: call, node: 'n1' };
    if (f === 'put') invoke.value = args[0];
    if (f === 'cas') Object.assign(invoke, { expected: args[0], value: args[1] });
    out.push(invoke);
    if (ret === null) continue;
    const [type, detail] = outcome.split(' ');
    const done: ClientEvent = { process, type: 'ok', f, key, time: ret };
    if (type === 'fail' || type === 'info') Object.assign(done, { type, error: detail });
    else if (f === 'get') Object.assign(done, outcome === 'absent' ? { found: false } : { found: true, value: outcome });
    else if (f === 'cas') done.swapped = outcome === 'swapped';
    out.push(done);
  }
  return out.sort((a, b) => a.time - b.time);
}

// a crash at 2500 after a kill-all begun at 2015: the window runs from 15 to 2500
const history: Row[] = [
  ['a', 0, 10, 'put k1 v1', 'ok'],
  ['b', 20, 30, 'put k1 v2', 'ok'], // acknowledged, then the last read of k1 shows v1 again: lost
  ['c', 40, 45, 'get k1', 'fail NO_LEADER'],
  ['d', 50, 2050, 'put k2 w1', 'info TIMEOUT'],
  ['e', 60, 70, 'del k2', 'ok'],
  ['f', 80, 90, 'cas k1 v1 v3', 'not-swapped'],
  ['g', 100, 110, 'put k3 x', 'ok'], // never read again: whether it survived is not told
  ['h', 2400, null, 'get k3', ''],
  ['final1', 3000, 3010, 'get k1', 'v1'],
  ['final2', 3020, 3030, 'get k2', 'absent'],
];

describe('the client operations around an incident', () => {
  test('operations pair invocations with completions: ok, failed (certainly no effect) or unknown', () => {
    const ops = clientOperations(events(history));
    assert.deepEqual(
      ops.map((o) => [o.process, o.outcome, o.text]),
      [
        ['a', 'ok', 'put(k1, "v1") → ok'],
        ['b', 'ok', 'put(k1, "v2") → ok'],
        ['c', 'failed', 'get(k1) → failed (NO_LEADER)'],
        ['d', 'unknown', 'put(k2, "w1") → ? (TIMEOUT)'],
        ['e', 'ok', 'del(k2) → ok'],
        ['f', 'ok', 'cas(k1, "v1" → "v3") → not swapped'],
        ['g', 'ok', 'put(k3, "x") → ok'],
        ['h', 'unknown', 'get(k3) → ? (no answer before the history ended)'],
        ['final1', 'ok', 'get(k1) → "v1"'],
        ['final2', 'ok', 'get(k2) → absent'],
      ],
    );
  });

  test('the window holds the operations whose [call, return] meets it; one never answered runs to the end', () => {
    const ops = clientOperations(events(history));
    assert.deepEqual(
      inWindow(ops, 15, 2500).map((o) => o.process),
      ['b', 'c', 'd', 'e', 'f', 'g', 'h'],
    );
    assert.deepEqual(
      inWindow(ops, 2060, 2999).map((o) => o.process),
      ['h'],
    );
    // called before the window, answered inside it
    assert.deepEqual(
      inWindow(ops, 2000, 2999).map((o) => o.process),
      ['d', 'h'],
    );
  });

  test('a lost write: acknowledged, and the last read of its key shows a value left by an operation that returned before it was called', () => {
    const lost = lostWrites(clientOperations(events(history)));
    assert.deepEqual(
      lost.map((l) => [l.write.process, l.read.process]),
      [['b', 'final1']],
    );
    // the value's writer overlapping the write, or of unknown outcome, may have come after it: not lost
    assert.deepEqual(lostWrites(clientOperations(events([['a', 0, 25, 'put k v1', 'ok'], ['b', 20, 30, 'put k v2', 'ok'], ['r', 40, 41, 'get k', 'v1']]))), []);
    assert.deepEqual(lostWrites(clientOperations(events([['a', 0, 5, 'put k v1', 'info TIMEOUT'], ['b', 20, 30, 'put k v2', 'ok'], ['r', 40, 41, 'get k', 'v1']]))), []);
    // a read that began before the write was acknowledged tells nothing about it
    assert.deepEqual(lostWrites(clientOperations(events([['a', 0, 5, 'put k v1', 'ok'], ['b', 20, 45, 'put k v2', 'ok'], ['r', 40, 50, 'get k', 'v1']]))), []);
    // a delete lost: the key reads as the value written before it
    const del = lostWrites(clientOperations(events([['a', 0, 5, 'put k v1', 'ok'], ['b', 20, 30, 'del k', 'ok'], ['r', 40, 41, 'get k', 'v1']])));
    assert.deepEqual(
      del.map((l) => l.write.text),
      ['del(k) → ok'],
    );
  });

  test('without an incident the rendering is the lost writes of the history, or nothing', () => {
    const ops = clientOperations(events(history));
    assert.match(renderIncidents([], ops), /^acknowledged writes lost in the whole history: 1 .*\n {4}b put\(k1, "v2"\) → ok/);
    assert.equal(renderIncidents([], ops.filter((o) => o.process !== 'b')), '');
    // a lost delete: the key reads as the value written before it
    const lostDelete = clientOperations(events([['a', 0, 5, 'put k v1', 'ok'], ['b', 20, 30, 'del k', 'ok'], ['r', 40, 41, 'get k', 'v1']]));
    assert.match(renderIncidents([], lostDelete), /\n {4}b del\(k\) → ok \[-20, -10\]; then r's get\(k\) → "v1" \[\+0, \+1\], what a's put\(k, "v1"\) → ok \[-40, -35\] left\n$/);
  });

  test('windows: a crash from 2 s before the fault that preceded it; two leaders from 1 s before the first sighting', () => {
    const faults = [
      { kind: 'kill-follower', target: 'n2', at: 500 },
      { kind: 'kill-all', target: 'every controller', at: 2015 },
      { kind: 'pause-leader', target: 'n1', at: 9000 },
    ];
    assert.deepEqual(crashIncident('n2 exited', 2500, faults), { problem: 'n2 exited', at: 2500, from: 15, to: 2500, since: '2 s before kill-all on every controller', until: 'the exit' });
    assert.equal(crashIncident('n2 exited', 100, faults).from, -1900);
    assert.deepEqual(sightingIncident('n1 saw two leaders', 5000, 5200), { problem: 'n1 saw two leaders', at: 5000, from: 4000, to: 6200, since: '1 s before the first sighting', until: '1 s after the last' });
  });

  test('the rendering names each operation of the window with its process, times from the incident and outcome, and marks the lost write', () => {
    const ops = clientOperations(events(history));
    const incident = crashIncident('n2 exited by itself (exit code 1): error: restored commit 24 beyond last index 17', 2500, [{ kind: 'kill-all', target: 'every controller', at: 2015 }]);
    const full = renderIncidents([incident], ops);
    const lines = full.split('\n');
    assert.equal(lines[0], 'incident 1: n2 exited by itself (exit code 1): error: restored commit 24 beyond last index 17');
    assert.equal(lines[1], '  client operations from -2485 ms (2 s before kill-all on every controller) to +0 ms (the exit): 7 (4 ok, 1 failed, 2 unknown)');
    const row = (process: string) => lines.find((l) => l.trimStart().startsWith(`${process} `));
    assert.match(row('b')!, /^ {4}b +-2480 +-2470 +ok +n1 +put\(k1, "v2"\) → ok {3}LOST: the last read of k1 \(final1, called at \+500 ms\) saw "v1"/);
    assert.match(row('c')!, /-2460 +-2455 +failed +n1 +get\(k1\) → failed \(NO_LEADER\)$/);
    assert.match(row('h')!, /-100 +open +unknown +n1 +get\(k3\) → \?/);
    assert.equal(row('a'), undefined, 'a returned before the window');
    assert.equal(row('final1'), undefined, 'the final read began after the incident');
    assert.equal(lines[10], '  acknowledged writes in this window: 3; lost (the last read of their key no longer shows them): 1; not told (no read of their key began after them): 1');
    // then every lost write of the history, with the read that no longer shows it and what left the value it shows
    assert.match(lines[11]!, /^acknowledged writes lost in the whole history: 1 /);
    assert.equal(lines[12], '    b put(k1, "v2") → ok [-2980, -2970]; then final1\'s get(k1) → "v1" [+0, +10], what a\'s put(k1, "v1") → ok [-3000, -2990] left');
    assert.equal(lines.length, 14);

    // printed: the lost write always, and at most `limit` others: acknowledged and unknown ones nearest the incident before failed ones
    const short = renderIncidents([incident], ops, { limit: 1, fullListing: 'incidents.txt' });
    assert.ok(short.includes('    b '), 'the lost write stays');
    assert.ok(short.includes('    h '), 'the nearest one stays');
    assert.ok(!short.includes('    e '));
    assert.match(short, /… and 5 more not listed here \(1 failed NO_LEADER, 1 unknown, 3 ok\): every one is in incidents\.txt/);
    // with room for five, every one but the failed read
    const five = renderIncidents([incident], ops, { limit: 5 });
    for (const p of ['b', 'd', 'e', 'f', 'g', 'h']) assert.ok(five.includes(`    ${p} `), p);
    assert.ok(!five.includes('    c '));
    assert.match(five, /… and 1 more not listed here \(1 failed NO_LEADER\)\n/);
    // a failed operation comes after the others, however near it is
    const atTheFailedRead = renderIncidents([sightingIncident('n1 saw two leaders', 42, 42)], ops, { limit: 2 });
    for (const p of ['b', 'd', 'e']) assert.ok(atTheFailedRead.includes(`    ${p} `), p);
    assert.ok(!atTheFailedRead.includes('    c '));

    const html = renderIncidentsHtml([incident], ops);
    assert.equal((html.match(/<tr class=/g) ?? []).length, 7);
    assert.match(html, /^<h1>1 incident\(s\)/);
    assert.equal(renderIncidentsHtml([], ops), '');
    // the run's HTML report carries them after the checker's verdict
    const page = renderHtml(checkHistory([]), html);
    assert.ok(page.indexOf(html) > page.indexOf('<h1>linearizable</h1>'), 'the incidents are on the page, after the verdict');
    assert.match(html, /<tr class="lost"><td>b<\/td><td>-2480<\/td><td>-2470<\/td><td>ok<\/td>/);
  });
});
