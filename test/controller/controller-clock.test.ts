// The controller's own timers run on the node's clock (ControllerOptions.clock), as the member's do:
// the demo's pause (actors/pausableClock.ts) holds a blank node's auto-join retries and a member's
// leaderless warnings, not only its raft ticks; resumed, what fell due runs. Health is driven by a
// manual clock ("time passes" is a step of the test); auto-join runs on the in-process bus in real
// time, against a second, unpaused node as the witness that time did pass.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ControllerContext } from '../../actors/controller/context.ts';
import { watchHealth } from '../../actors/controller/health.ts';
import { PausableClock } from '../../actors/pausableClock.ts';
import { ControllerEventHub } from '../../runtime/events.ts';
import { joinRequestSchema } from '../../runtime/join/autoJoin.ts';
import { type Logger, silentLogger } from '../../runtime/log/logger.ts';
import { decode, encodeReply } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';
import { inProcessCluster } from '../helpers/inProcessCluster.ts';
import { ManualClock } from '../helpers/manualClock.ts';

describe("the controller's timers run on the node's clock", () => {
  const cluster = inProcessCluster('conclave-controller-clock-');

  it("the demo's pause holds a blank node's auto-join announcements; resumed, it announces again", async () => {
    const prefix = 'clk';
    const clusterId = '01930000-0000-7000-8000-000000000000';
    const heard = new Map<string, number>();
    const count = (name: string) => heard.get(name) ?? 0;
    const clock = new PausableClock();
    // the cluster's stand-in: refuses every announcement at once (each node then retries after the
    // shared backoff, 1 s, 2 s, …); the paused node is paused as its first announcement arrives
    const observer = cluster.bus.connect('observer');
    observer.subscribe(`${prefix}.discover`, (msg) => {
      const decoded = decode(msg.data, { 'join.request': joinRequestSchema });
      if (!decoded.ok) return;
      const from = decoded.envelope.from;
      heard.set(from, count(from) + 1);
      if (from === 'paused1' && count(from) === 1) clock.pause();
      msg.respond(encodeReply({ ok: false, error: { code: 'JOIN_REFUSED', message: `${from}: not now` } }));
    });
    await cluster.start('paused1', { prefix, clock, join: { cluster: clusterId } });
    await waitUntil(() => clock.isPaused, { what: 'the first announcement of paused1 (which pauses it)', timeoutMs: 30_000 });
    // the witness starts after the pause: its third announcement comes 1 s + 2 s after its first,
    // later than paused1's second would have (1 s after its first, before the pause)
    await cluster.start('witness1', { prefix, join: { cluster: clusterId } });
    await waitUntil(() => count('witness1') >= 3, { what: 'three announcements of the unpaused witness', timeoutMs: 60_000 });
    const whilePaused = count('paused1');
    process.stdout.write(`# while paused1 was paused: paused1 announced ${whilePaused} time(s) in all, witness1 ${count('witness1')}\n`);
    assert.equal(whilePaused, 1, 'a paused node does not retry its announcement');

    const due = clock.resume();
    await waitUntil(() => count('paused1') > whilePaused, { what: 'paused1 announcing again once resumed', timeoutMs: 30_000 });
    process.stdout.write(`# resumed: ${due} timer(s) fell due; paused1 announced again (${count('paused1')} in all)\n`);
  });

  it("a member's leaderless warning waits for its clock: held while paused, given on resume", () => {
    const base = new ManualClock();
    const clock = new PausableClock(base);
    const warnings: string[] = [];
    const log = { warn: (_: unknown, msg: string) => warnings.push(msg), info: () => {}, child: () => log } as unknown as Logger;
    const events = new ControllerEventHub(silentLogger());
    const ctx = {
      name: 'h1',
      opts: { warnWhenLeaderlessForMs: 300 },
      clock,
      events,
      logFor: () => log,
      phase: () => 'member',
      member: () => ({ status: () => ({ leader: null, term: 3, members: [] }) }),
    } as unknown as ControllerContext;
    const stop = watchHealth(ctx);
    try {
      base.advance(299);
      assert.deepEqual(warnings, [], 'not before warnWhenLeaderlessForMs');
      base.advance(1);
      assert.equal(warnings.length, 1, `warned once warnWhenLeaderlessForMs passed on its clock: ${JSON.stringify(warnings)}`);
      assert.match(warnings[0]!, /^no leader for 0\.3 s \(term 3\)/);
      clock.pause();
      base.advance(10_000);
      assert.equal(warnings.length, 1, 'no warning while paused');
      clock.resume();
      base.settle();
      assert.equal(warnings.length, 2, 'the overdue warning on resume');
      assert.match(warnings[1]!, /^no leader for 10\.3 s/, 'counting the time it was paused');
    } finally {
      stop();
    }
  });
});
