// Scenario B: the same three controllers inside the bench process, on the in-process bus (no
// sockets, no process hops), for reference. The client uses the same admin requests over its own
// connection to that bus.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminRequest } from '../../runtime/cli/client.ts';
import { type Controller, startController } from '../../runtime/controller.ts';
import { createLogger } from '../../runtime/log/logger.ts';
import { createInProcessBus } from '../../runtime/transport/index.ts';
import { seedStaticCluster } from '../../test/helpers/staticCluster.ts';
import { onCleanup, trackDir } from './cleanup.ts';
import type { RaftSettings } from './controllerProcess.ts';
import { fmtLoad } from './natsCluster.ts';
import { progress, sleep, VALUE_100B } from './progress.ts';
import { type LoadResult, runClosedLoop } from './stats.ts';

const PREFIX = 'bench';

export interface InProcessResults {
  sequential: LoadResult;
  inflight64: LoadResult;
  inflight256: LoadResult;
}

export async function runInProcessScenarios(opts: { raft: RaftSettings; seqN: number; concN: number }, partial: Partial<InProcessResults> = {}): Promise<InProcessResults> {
  progress('B: 3 controllers in the bench process on the in-process bus');
  const dir = await mkdtemp(join(tmpdir(), 'conclave-bench-inproc-'));
  trackDir(dir);
  const nodes = ['p1', 'p2', 'p3'].map((name) => ({ name, dataDir: join(dir, name) }));
  await seedStaticCluster(nodes);
  const hub = createInProcessBus();
  // errors only, on stderr with the progress lines (stdout is the table's)
  const logger = createLogger({ level: 'error', pretty: false });
  const controllers: Controller[] = [];
  const stopAll = async () => {
    await Promise.all(controllers.map((c) => c.stop()));
    controllers.length = 0;
    await hub.close();
  };
  onCleanup(stopAll);
  try {
    for (const n of nodes) {
      controllers.push(await startController({ name: n.name, dataDir: n.dataDir, prefix: PREFIX, transport: { bus: hub }, raft: opts.raft, logger }));
    }
    const client = hub.connect('bench-client');
    const deadline = performance.now() + 10_000;
    const findLeader = () => controllers.find((c) => c.status().role === 'leader')?.name;
    let leader = findLeader();
    while (leader === undefined) {
      if (performance.now() > deadline) throw new Error('in-process cluster: no leader after 10 s');
      await sleep(10);
      leader = findLeader();
    }
    const leaderName = leader;
    const put = (key: string) => adminRequest(client, PREFIX, leaderName, 'propose', { command: { op: 'put', key, value: VALUE_100B } }, 5000);
    const load = async (label: string, n: number, concurrency: number) => {
      const r = await runClosedLoop(n, concurrency, (i) => put(`${label}/${i}`));
      if (r.errors > 0) throw new Error(`in-process ${label}: ${r.errors} of ${n} puts failed (first: ${r.firstError})`);
      return r;
    };
    progress(`  leader ${leader}; warming up (500 puts)`);
    await load('warmup', 500, 16);
    progress(`B1 sequential: ${opts.seqN} puts`);
    const sequential = await load('seq', opts.seqN, 1);
    partial.sequential = sequential;
    progress(`  ${fmtLoad(sequential)}`);
    progress(`B2 ${opts.concN} puts, 64 in flight`);
    const inflight64 = await load('c64', opts.concN, 64);
    partial.inflight64 = inflight64;
    progress(`  ${fmtLoad(inflight64)}`);
    progress(`B2 ${opts.concN} puts, 256 in flight`);
    const inflight256 = await load('c256', opts.concN, 256);
    partial.inflight256 = inflight256;
    progress(`  ${fmtLoad(inflight256)}`);
    await client.close();
    return { sequential, inflight64, inflight256 };
  } finally {
    await stopAll();
  }
}
