// `conclave run --metrics HOST:PORT` on a real nats-server: the Prometheus endpoint is scraped over
// HTTP before and after init and a write (and where the write's time went, by stage), after a malformed admin message (counted, the node keeps
// running), and the flag's mistakes end in one `error:` line.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cliCluster } from '../helpers/cliCluster.ts';
import { waitUntil } from '../helpers/cli.ts';
import { natsServerSkipReason } from '../helpers/natsServer.ts';

type Sample = { name: string; labels: Record<string, string>; value: number };

/** the Prometheus text format's samples (comments skipped) */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

describe('conclave run --metrics (real NATS, Prometheus text over HTTP)', { skip: natsServerSkipReason() }, () => {
  const c = cliCluster({ prefix: 'met', tmpPrefix: 'conclave-metrics-' });

  it('serves role, phase, term, indexes, members, leader changes and refusals; other paths are 404', async () => {
    const p = await c.run('m1', { metrics: '127.0.0.1:0' });
    await p.waitForOutput(/metrics served at http:\/\/127\.0\.0\.1:\d+\/metrics/);
    const url = /metrics served at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(p.stdout + p.stderr)![1]!;
    const scrape = async () => {
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      return parse(await res.text());
    };

    const blank = await scrape();
    assert.equal(value(blank, 'conclave_phase', { phase: 'uninitialized', node: 'm1' }), 1);
    assert.equal(value(blank, 'conclave_role', { role: 'none' }), 1);
    assert.equal(value(blank, 'conclave_leader_known'), 0);
    assert.ok((value(blank, 'conclave_process_resident_memory_bytes') ?? 0) > 0, 'process metrics are there');

    await c.admin('m1', 'init', {});
    await c.admin('m1', 'propose', { command: { op: 'put', key: 'k', value: 'v' } });
    let member: Sample[] = [];
    await waitUntil(
      async () => {
        member = await scrape();
        return value(member, 'conclave_role', { role: 'leader' }) === 1 && (value(member, 'conclave_applied_index') ?? 0) >= 2;
      },
      { what: 'the metrics to show m1 leading with the write applied', context: () => JSON.stringify(member) },
    );
    assert.equal(value(member, 'conclave_phase', { phase: 'member' }), 1);
    assert.equal(value(member, 'conclave_role', { role: 'follower' }), 0);
    assert.ok(value(member, 'conclave_term')! >= 1);
    assert.ok(value(member, 'conclave_commit_index')! >= value(member, 'conclave_applied_index')!);
    assert.equal(value(member, 'conclave_leader_known'), 1);
    assert.equal(value(member, 'conclave_members'), 1);
    assert.equal(value(member, 'conclave_voters'), 1);
    assert.equal(value(member, 'conclave_bus_connected'), 1);
    assert.ok(value(member, 'conclave_leader_changes_total')! >= 1, 'electing itself is a leader change');

    // proposals by outcome: the write applied; an invalid one refused at the door
    await assert.rejects(c.admin('m1', 'propose', { command: { op: 'put', key: '', value: 'v' } }));
    let outcomes: Sample[] = [];
    await waitUntil(
      async () => {
        outcomes = (await scrape()).filter((s) => s.name === 'conclave_proposals_total');
        return (value(outcomes, 'conclave_proposals_total', { outcome: 'refused' }) ?? 0) >= 1;
      },
      { what: 'the refused proposal to be counted', context: () => JSON.stringify(outcomes) },
    );
    assert.ok(value(outcomes, 'conclave_proposals_total', { outcome: 'applied' })! >= 1);
    assert.equal(value(outcomes, 'conclave_proposals_total', { outcome: 'failed' }), 0);
    assert.equal(value(member, 'conclave_snapshots_total', { event: 'received' }), 0, 'snapshots are counted (none here: one node, no compaction yet)');

    // where the write's time went: a histogram per stage of the write path, its buckets cumulative
    let stages: Sample[] = [];
    const STAGES = ['propose', 'persist', 'commit', 'apply', 'stateWrite'];
    await waitUntil(
      async () => {
        stages = (await scrape()).filter((s) => s.name.startsWith('conclave_stage_seconds'));
        return STAGES.every((stage) => (value(stages, 'conclave_stage_seconds_count', { stage }) ?? 0) >= 1);
      },
      { what: 'every stage of the write path to have been timed', context: () => JSON.stringify(stages) },
    );
    for (const stage of STAGES) {
      const buckets = stages.filter((s) => s.name === 'conclave_stage_seconds_bucket' && s.labels.stage === stage);
      assert.equal(buckets.at(-1)?.labels.le, '+Inf', `${stage}: the last bucket is +Inf`);
      assert.equal(buckets.at(-1)?.value, value(stages, 'conclave_stage_seconds_count', { stage }), `${stage}: +Inf counts them all`);
      for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, `${stage}: buckets are cumulative`);
      assert.ok(value(stages, 'conclave_stage_seconds_sum', { stage })! > 0, `${stage}: some time was spent`);
      assert.equal(buckets[0]?.labels.node, 'm1');
    }

    // a malformed admin message: refused, counted, exported; the node keeps running
    c.bus.publish('met.node.m1.admin', new TextEncoder().encode('{"not":"an envelope"'));
    let refused: Sample[] = [];
    await waitUntil(
      async () => {
        refused = await scrape();
        return refused.some((s) => s.name === 'conclave_refused_total' && s.labels.source === 'admin' && s.value >= 1);
      },
      { what: 'the malformed admin message to be counted in conclave_refused_total', context: () => JSON.stringify(refused.filter((s) => s.name.startsWith('conclave_refused'))) },
    );
    assert.ok(p.running, 'the node is still running');

    const other = await fetch(url.replace(/\/metrics$/, '/'));
    assert.equal(other.status, 404);
    await other.text();
  });

  it('a malformed --metrics, or a port in use, ends in one error: line and a non-zero exit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-metrics-bad-'));
    try {
      const bad = await c.cli(['run', '--name', 'b1', '--data-dir', join(dir, 'b1'), '--metrics', 'nine-four-six-four']);
      assert.notEqual(bad.code, 0);
      const badErrors = bad.stderr.split('\n').filter((l) => l.startsWith('error:'));
      assert.equal(badErrors.length, 1, bad.stderr);
      assert.match(badErrors[0]!, /metrics/);

      const holder = await c.run('m2', { metrics: '127.0.0.1:0' });
      await holder.waitForOutput(/metrics served at/);
      const port = /metrics served at http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(holder.stdout + holder.stderr)![1]!;
      const busy = await c.cli(['run', '--name', 'b2', '--data-dir', join(dir, 'b2'), '--metrics', `127.0.0.1:${port}`]);
      assert.notEqual(busy.code, 0);
      const busyErrors = busy.stderr.split('\n').filter((l) => l.startsWith('error:'));
      assert.equal(busyErrors.length, 1, busy.stderr);
      assert.match(busyErrors[0]!, /in use/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
