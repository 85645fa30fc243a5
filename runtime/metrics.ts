// `conclave run --metrics HOST:PORT`: a Prometheus text endpoint for one controller (GET /metrics).
// Values are read from the controller when scraped (role, term, indexes, members, bus, refusals);
// leader changes are counted as they happen. One registry per controller, so a host app that
// embeds several controllers serves each on its own port. prom-client is loaded only when asked for.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, type Metric, Registry } from 'prom-client';
import { STAGE_BUCKETS, STAGES } from '../actors/stageTimes.ts';
import type { Controller } from './controller.ts';
import { conclaveError } from './errors.ts';
import type { Logger } from './log/logger.ts';

export interface MetricsServer {
  /** http://HOST:PORT/metrics */
  url: string;
  registry: Registry;
  stop(): Promise<void>;
}

const ROLES = ['leader', 'follower', 'candidate', 'pre-candidate', 'learner', 'none'] as const;
const PHASES = ['uninitialized', 'bootstrapping', 'joining', 'member', 'removed', 'failed'] as const;

/** the metrics of one controller, registered in a registry of its own */
export function controllerMetrics(controller: Controller): { registry: Registry; stop(): void } {
  const registry = new Registry();
  registry.setDefaultLabels({ node: controller.name });
  collectDefaultMetrics({ register: registry, prefix: 'conclave_' });
  // read once per scrape: status() builds a small object, not worth doing once per metric
  let cached: { at: number; status: ReturnType<Controller['status']> } | null = null;
  const status = () => {
    const now = Date.now();
    if (cached === null || now - cached.at > 100) cached = { at: now, status: controller.status() };
    return cached.status;
  };
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  new Gauge({
    name: 'conclave_role',
    help: 'raft role of this node: 1 for the current role, 0 for the others (none: not a member)',
    labelNames: ['role'],
    registers: [registry],
    collect() {
      const role = status().role;
      for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0);
    },
  });
  new Gauge({
    name: 'conclave_phase',
    help: 'bootstrap phase of this node: 1 for the current phase, 0 for the others',
    labelNames: ['phase'],
    registers: [registry],
    collect() {
      const phase = status().phase;
      for (const p of PHASES) this.set({ phase: p }, p === phase ? 1 : 0);
    },
  });
  gauge('conclave_term', 'current raft term', () => status().term);
  gauge('conclave_commit_index', 'highest log index known committed', () => status().commitIndex);
  gauge('conclave_applied_index', 'highest log index applied to the replicated state on this node', () => status().appliedIndex);
  gauge('conclave_leader_known', '1 when this node knows a leader, 0 otherwise', () => (status().leader === null ? 0 : 1));
  gauge('conclave_members', 'members in the applied configuration (voters and learners)', () => status().members.length);
  gauge('conclave_voters', 'voting members in the applied configuration', () => status().members.filter((m) => m.voter).length);
  gauge('conclave_bus_connected', '1 while the bus connection is up', () => (status().bus.connected ? 1 : 0));
  new Counter({
    name: 'conclave_bus_reconnects_total',
    help: 'times the bus connection was re-established',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(status().bus.reconnects);
    },
  });
  new Counter({
    name: 'conclave_refused_total',
    help: 'input refused and dropped, by source (peer, admin, join) and reason: malformed, forged, foreign, stale',
    labelNames: ['source', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { source, reason, count } of controller.refusedCounts()) this.inc({ source, reason }, count);
    },
  });
  registry.registerMetric(stageHistogram(controller));
  // counts kept by the member since it started (a restart of it starts them again: rate() takes resets in its stride)
  const counted = (name: string, help: string, labelNames: string[], read: (counts: NonNullable<ReturnType<Controller['memberCounts']>>) => Array<[Record<string, string>, number]>) =>
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        const counts = controller.memberCounts();
        if (counts === null) return;
        for (const [labels, value] of read(counts)) this.inc(labels, value);
      },
    });
  counted('conclave_proposals_total', 'commands proposed to this node, by outcome: applied, refused (before the log: invalid, too large, not the leader, busy, stopping), failed (after it: leadership lost, outcome unknown, refused by the state)', ['outcome'], ({ proposals: p }) => [
    [{ outcome: 'applied' }, p.applied],
    [{ outcome: 'refused' }, p.refused],
    [{ outcome: 'failed' }, p.failed],
  ]);
  counted('conclave_snapshots_total', 'snapshots: taken (the log compacted), sent and received in full, transfers abandoned', ['event'], ({ snapshots: s }) => [
    [{ event: 'taken' }, s.taken],
    [{ event: 'sent' }, s.sent],
    [{ event: 'received' }, s.received],
    [{ event: 'abandoned' }, s.abandoned],
  ]);
  counted('conclave_snapshot_bytes_total', 'bytes of snapshots sent and received in full', ['direction'], ({ snapshots: s }) => [
    [{ direction: 'sent' }, s.sentBytes],
    [{ direction: 'received' }, s.receivedBytes],
  ]);
  counted('conclave_snapshot_seconds_total', 'time spent sending and receiving snapshots (first chunk to last), summed over transfers', ['direction'], ({ snapshots: s }) => [
    [{ direction: 'sent' }, s.sentSeconds],
    [{ direction: 'received' }, s.receivedSeconds],
  ]);
  const leaderChanges = new Counter({ name: 'conclave_leader_changes_total', help: 'times the leader this node follows changed (to another node or to none)', registers: [registry] });
  let lastLeader = controller.status().leader;
  const off = controller.on('leaderChanged', ({ leader }) => {
    if (leader === lastLeader) return;
    lastLeader = leader;
    leaderChanges.inc();
  });
  return {
    registry,
    stop: () => {
      off();
      registry.clear();
    },
  };
}

/**
 * conclave_stage_seconds{stage}: where a write's time goes on this node (actors/stageTimes.ts), a
 * histogram per stage. The member keeps the counts; this hands them to prom-client as they are at the
 * scrape (prom-client's own Histogram can only observe, not take counts kept elsewhere).
 */
function stageHistogram(controller: Controller): Metric {
  const name = 'conclave_stage_seconds';
  const help =
    "time spent in each stage of the write path on this node: propose (the leader: a proposal to its result), persist (raft's durable write), " +
    'commit (the leader: an entry appended to committed), apply (committed entries applied, proposals answered), stateWrite (the applied state written to the store)';
  const read = () => {
    const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
    const histograms = controller.stageTimes();
    if (histograms === null) return values;
    for (const stage of STAGES) {
      const h = histograms[stage];
      for (const [i, le] of STAGE_BUCKETS.entries()) values.push({ metricName: `${name}_bucket`, labels: { stage, le }, value: h.cumulative[i]! });
      values.push({ metricName: `${name}_bucket`, labels: { stage, le: '+Inf' }, value: h.count });
      values.push({ metricName: `${name}_sum`, labels: { stage }, value: h.sum });
      values.push({ metricName: `${name}_count`, labels: { stage }, value: h.count });
    }
    return values;
  };
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => ({ name, help, type: 'histogram', aggregator: 'sum', values: read() }),
    reset: () => {},
  };
  return metric as unknown as Metric;
}

/** serve `controller`'s metrics at http://HOST:PORT/metrics (port 0: any free port) */
export async function startMetricsServer(controller: Controller, opts: { listen: string; logger: Logger }): Promise<MetricsServer> {
  const { host, port } = parseHostPort(opts.listen);
  const metrics = controllerMetrics(controller);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }).end('not found: the metrics are at GET /metrics\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType, 'x-content-type-options': 'nosniff' }).end(text),
      (err: unknown) => {
        opts.logger.warn({ err }, 'metrics: a scrape failed');
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`error: the metrics could not be collected: ${(err as Error).message}\n`);
      },
    );
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    metrics.stop();
    const code = (err as NodeJS.ErrnoException).code;
    throw conclaveError('USAGE', `--metrics ${opts.listen}: cannot listen (${code ?? (err as Error).message})${code === 'EADDRINUSE' ? '; the port is in use: pick another one' : ''}`);
  }
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host}:${address.port}/metrics`,
    registry: metrics.registry,
    stop: async () => {
      metrics.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** "HOST:PORT" (0.0.0.0 for every interface); throws a USAGE error naming what is wrong */
export function parseHostPort(listen: string): { host: string; port: number } {
  const m = /^([^\s:]+):(\d{1,5})$/.exec(listen);
  if (!m) throw conclaveError('USAGE', `--metrics ${listen}: expected HOST:PORT, e.g. 127.0.0.1:9464 (0.0.0.0:9464 for every interface)`);
  const port = Number(m[2]);
  if (port > 65535) throw conclaveError('USAGE', `--metrics ${listen}: port ${port} is out of range (0-65535)`);
  return { host: m[1]!, port };
}
