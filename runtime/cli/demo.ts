// `conclave demo` (what `npm start` runs): three controllers on the embedded in-process bus,
// initialized and joined in front of the user, a few writes, a node of another cluster refused with
// both cluster ids, the inspector serving. Ctrl-C stops everything cleanly (a second one forces).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Controller, startController } from '../controller.ts';
import { startInspectorForController } from '../inspect/index.ts';
import { createLogger } from '../log/logger.ts';
import { createInProcessBus } from '../transport/inProcess.ts';
import { formatClusterList } from './format.ts';

export interface DemoFlags {
  inspect?: string;
  /** record the inspection stream to this file */
  record?: string;
  dataDir?: string;
  /** exit after the tour instead of waiting for Ctrl-C */
  once?: boolean;
}

const out = (line = '') => process.stdout.write(`${line}\n`);
const step = (n: number, text: string) => out(`${n}. ${text}`);
const RAFT = { heartbeatMs: 50, electionTimeoutMs: 500 };

export async function demoCommand(flags: DemoFlags): Promise<void> {
  const dataRoot = flags.dataDir ?? (await mkdtemp(join(tmpdir(), 'conclave-demo-')));
  const ownsData = flags.dataDir === undefined;
  // the tour prints what matters; the controllers' own logs (CONCLAVE_LOG_LEVEL=info) go to stderr
  const logger = createLogger({ level: (process.env.CONCLAVE_LOG_LEVEL as 'info' | undefined) ?? 'error' });
  const bus = createInProcessBus();
  const controllers: Controller[] = [];
  let inspector: { url: string; stop(): Promise<void> } | null = null;
  const start = async (name: string) => {
    const c = await startController({ name, dataDir: join(dataRoot, name), transport: { bus }, raft: RAFT, logger });
    controllers.push(c);
    return c;
  };
  const stop = async () => {
    await inspector?.stop();
    for (const c of controllers.reverse()) await c.stop();
    await bus.close();
    if (ownsData) await rm(dataRoot, { recursive: true, force: true });
  };

  out('Conclave demo — three controllers on the embedded in-process bus');
  out(`data in ${dataRoot}`);
  out();
  step(1, 'starting ctrl1, ctrl2, ctrl3: each opens its store and loads its identity before touching the bus');
  const [ctrl1, ctrl2, ctrl3] = [await start('ctrl1'), await start('ctrl2'), await start('ctrl3')] as [Controller, Controller, Controller];
  for (const c of [ctrl1, ctrl2, ctrl3]) out(`   ${c.name}: phase ${c.phase}, cluster id ${c.status().clusterId ?? 'null'}`);
  if (flags.inspect) {
    inspector = await startInspectorForController(ctrl1, { listen: flags.inspect, record: flags.record, logger: ctrl1.logFor('inspector') });
    out(`   inspector: ${inspector.url}  (open it now to watch the rest live)`);
  }

  let clusterId = ctrl1.status().clusterId;
  if (clusterId === null) {
    step(2, 'explicit initialization of ctrl1 (conclave init --node ctrl1): a one-member cluster with a fresh UUID');
    clusterId = await ctrl1.init();
  } else {
    step(2, 'ctrl1 was already initialized: it resumes as a member of its cluster');
  }
  out(`   cluster id ${clusterId}`);
  const leader = await ctrl1.waitForLeader();
  out(`   leader: ${leader}`);

  step(3, 'the cluster adds ctrl2 and ctrl3 (conclave cluster add): join offer → join rule at both ends → learner → catch-up → voter');
  const lead = controllers.find((c) => c.name === leader)!;
  for (const name of ['ctrl2', 'ctrl3']) {
    const t = Date.now();
    const result = await lead.cluster.add(name, { timeoutMs: 30_000 });
    out(`   ${name}: ${result.outcome} in ${Date.now() - t} ms (node id ${result.nodeId})`);
  }

  step(4, 'writing through raft from any member (forwarded to the leader; durable before it is acknowledged)');
  await ctrl2.propose({ op: 'put', key: 'greeting', value: 'hello from the demo' });
  await ctrl3.propose({ op: 'put', key: 'started', value: new Date().toISOString() });
  const read = (await ctrl3.read({ op: 'get', key: 'greeting' })) as { value: unknown };
  out(`   kv get greeting via ctrl3 → ${JSON.stringify(read.value)} (linearizable read)`);

  step(5, 'a node of ANOTHER cluster: intruder is initialized on its own, then ctrl1’s cluster tries to add it');
  const intruder = await start('intruder');
  const foreignId = intruder.status().clusterId ?? (await intruder.init());
  out(`   intruder belongs to cluster ${foreignId}`);
  try {
    await lead.cluster.add('intruder', { timeoutMs: 10_000 });
    out('   unexpected: intruder was added');
  } catch (err) {
    out(`   refused at both ends — ${(err as Error).message}`);
  }
  out();
  out(formatClusterList(await lead.cluster.list()));
  out();
  out('Next, over a real NATS server (nats-server -p 4222 in another terminal):');
  out('  npx conclave run --name ctrl1 --data-dir /tmp/c1 &    # a blank node waits, phase uninitialized');
  out('  npx conclave init --node ctrl1                        # prints the new cluster id');
  out('  npx conclave run --name ctrl2 --data-dir /tmp/c2 &  && npx conclave cluster add ctrl2 --via ctrl1');
  out('  npx conclave kv put color blue --via ctrl2 && npx conclave kv get color --via ctrl1');
  out();
  if (flags.once) {
    await stop();
    return;
  }
  out('The demo keeps running; press Ctrl-C to stop it.');
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = () => {
      signals++;
      if (signals > 1) process.exit(130);
      out('\nstopping… (Ctrl-C again to force)');
      stop().then(resolve, (err: unknown) => {
        process.stderr.write(`error: demo did not stop cleanly: ${(err as Error).message}\n`);
        process.exitCode = 1;
        resolve();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
