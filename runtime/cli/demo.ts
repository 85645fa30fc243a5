// `conclave demo` (what `npm start` runs): three controllers initialized and joined in front of the
// user, a few writes, a node of another cluster refused with both cluster ids, the inspector serving.
// Transport: the embedded in-process bus, or a real NATS server when NATS_URL is set or --nats is
// given (then every controller and the intruder connect to it, under a subject prefix of their own so
// two demos on one server never meet). Ctrl-C stops everything cleanly (a second one forces).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PausableClock } from '../../actors/pausableClock.ts';
import { commonFromEnv, type NatsFlags, type NatsSettings } from '../config/config.ts';
import { type Controller, startController, type TransportOption } from '../controller.ts';
import { ConclaveError, conclaveError } from '../errors.ts';
import { checkListen, type InspectorControls, startInspector } from '../inspect/index.ts';
import { createLogger } from '../log/logger.ts';
import { createOperatorKey, operatorSigner } from '../operatorKey.ts';
import { type CutOffBus, withCutOff } from '../transport/cutOff.ts';
import { createInProcessBus } from '../transport/inProcess.ts';
import { connectNats } from '../transport/nats.ts';
import { BusConnectError } from '../transport/types.ts';
import { formatClusterList } from './format.ts';

export interface DemoFlags extends Omit<NatsFlags, 'nats'> {
  inspect?: string;
  /** the inspector may listen on an address other than loopback */
  inspectPublic?: boolean;
  /** record the inspection stream to this file */
  record?: string;
  dataDir?: string;
  /** exit after the tour instead of waiting for Ctrl-C */
  once?: boolean;
  /** run on this NATS server (comma-separated URLs) instead of the in-process bus; default $NATS_URL */
  nats?: string;
  /** subject prefix on NATS; default a fresh `demo-<random>` per run */
  prefix?: string;
}

const out = (line = '') => process.stdout.write(`${line}\n`);
const step = (n: number, text: string) => out(`${n}. ${text}`);
const RAFT = { heartbeatMs: 50, electionTimeoutMs: 500 };
/** how long the demo waits for NATS to accept its first connection */
const NATS_CONNECT_TIMEOUT_MS = 5000;

type DemoTransport = { kind: 'in-process'; bus: CutOffBus; prefix: string } | { kind: 'nats'; servers: string[]; nats: NatsSettings; prefix: string };

/**
 * NATS when --nats or $NATS_URL says so, else the in-process bus. $CONCLAVE_PREFIX is deliberately not
 * used: the demo must never join the prefix of a real deployment by accident.
 */
async function chooseTransport(flags: DemoFlags): Promise<DemoTransport> {
  const url = flags.nats ?? process.env.NATS_URL;
  if (url === undefined || url.trim() === '') {
    const prefix = commonFromEnv({}, { prefix: flags.prefix }).prefix;
    // the page's "cut off" drops a node's traffic with the others; its inspection stream still flows
    return { kind: 'in-process', bus: withCutOff(createInProcessBus(), (subject) => subject.startsWith(`${prefix}.inspect.`)), prefix };
  }
  // the NATS credentials from the flags or the environment, as every command takes them
  const common = commonFromEnv({ ...process.env, CONCLAVE_PREFIX: undefined }, { ...flags, nats: url, prefix: flags.prefix ?? `demo-${randomBytes(4).toString('hex')}` });
  const servers = [...common.nats.servers];
  // one probe connection first, so an unreachable server is one clear error before anything starts
  try {
    const probe = await connectNats({ ...common.nats, name: 'conclave-demo-probe', maxReconnectAttempts: 0, timeoutMs: NATS_CONNECT_TIMEOUT_MS });
    await probe.close();
  } catch (err) {
    if (!(err instanceof BusConnectError)) throw err;
    throw new ConclaveError(
      'CONNECT',
      `the demo cannot reach NATS at ${servers.join(',')} (${err.reason}), taken from ${flags.nats !== undefined ? '--nats' : '$NATS_URL'}. Start one (nats-server -a 127.0.0.1 -p 4222), point ${flags.nats !== undefined ? '--nats' : 'NATS_URL'} at a running server, or ${flags.nats !== undefined ? 'leave out --nats' : 'unset NATS_URL'} to run the demo on the embedded in-process bus`,
    );
  }
  return { kind: 'nats', servers, nats: common.nats, prefix: common.prefix };
}

export async function demoCommand(flags: DemoFlags): Promise<void> {
  if (flags.inspect) checkListen(flags.inspect, flags.inspectPublic); // before anything starts
  const transport = await chooseTransport(flags);
  const onNats = transport.kind === 'nats';
  const dataRoot = flags.dataDir ?? (await mkdtemp(join(tmpdir(), 'conclave-demo-')));
  const ownsData = flags.dataDir === undefined;
  // on NATS a controller takes a change from a client only signed by an operator key it lists: the
  // demo makes its own (kept in its data folder), and the commands it prints sign with it
  const operatorKey = onNats ? await demoOperatorKey(dataRoot) : null;
  // the tour prints what matters; the controllers' own logs (CONCLAVE_LOG_LEVEL=info) go to stderr
  const logger = createLogger({ level: (process.env.CONCLAVE_LOG_LEVEL as 'info' | undefined) ?? 'error' });
  const controllers: Controller[] = [];
  let inspector: { url: string; stop(): Promise<void> } | null = null;
  const transportFor = (name: string): TransportOption =>
    transport.kind === 'nats' ? { nats: { ...transport.nats, name: `conclave-demo-${name}`, timeoutMs: NATS_CONNECT_TIMEOUT_MS } } : { bus: transport.bus };
  /** each node's clock, so the page can pause it (a fresh one per start) */
  const clocks = new Map<string, PausableClock>();
  const start = async (name: string) => {
    const clock = new PausableClock();
    const operators = operatorKey === null ? undefined : { keys: [operatorKey.publicKey] };
    const c = await startController({ name, dataDir: join(dataRoot, name), prefix: transport.prefix, transport: transportFor(name), raft: RAFT, logger, clock, operators });
    clocks.set(name, clock);
    if (stopping) {
      // Ctrl-C came while this one was starting: it must not outlive the others
      await c.stop();
      throw new ConclaveError('STOPPING', 'the demo is stopping');
    }
    controllers.push(c);
    return c;
  };
  /** the page's hands-on controls: stop and restart a node, pause it, cut it off, hand leadership over, write a key, add and remove nodes */
  const running = (name: string) => controllers.find((c) => c.name === name);
  const paused = (name: string) => transport.kind === 'in-process' && transport.bus.isPaused(name);
  /** the nodes that answer: a paused one is running but would not */
  const clusterMembers = () => controllers.filter((c) => c.name !== 'intruder' && !paused(c.name));
  /** the cluster's nodes the demo knows: its three, and those added from the page */
  const names = new Set(['ctrl1', 'ctrl2', 'ctrl3']);
  const leaderNow = () => {
    const leader = clusterMembers().find((c) => c.status().role === 'leader');
    if (!leader) throw conclaveError('NO_LEADER', 'the cluster has no leader right now: wait for the election');
    return leader;
  };
  const faultyBus = (what: string) => {
    if (transport.kind !== 'in-process') throw conclaveError('BUSY', `${what} needs the in-process bus: on NATS, stop the node instead (or block its server)`);
    return transport.bus;
  };
  const resumeNode = (name: string): string => {
    const held = faultyBus('resuming a node').resume(name);
    const timers = clocks.get(name)?.resume() ?? 0;
    const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
    return `${name} resumed after ${(held.pausedMs / 1000).toFixed(1)} s: ${count(held.sent, 'message')} it had sent went out, ${count(held.delivered, 'message')} sent to it handled now${held.dropped ? `, ${held.dropped} dropped (its buffers were full)` : ''}; ${count(timers, 'timer')} that fell due ran`;
  };
  /** stop a node (one that is paused is resumed first, as SIGTERM is followed by SIGCONT) */
  const stopNode = async (c: Controller) => {
    controllers.splice(controllers.indexOf(c), 1);
    if (paused(c.name)) resumeNode(c.name);
    clocks.delete(c.name);
    await c.stop();
  };
  const controls: InspectorControls = {
    nodes: () =>
      [...new Set([...names, ...controllers.map((c) => c.name)])].map((name) => ({
        name,
        running: running(name) !== undefined,
        cutOff: transport.kind === 'in-process' && transport.bus.isCutOff(name),
        lost: transport.kind === 'in-process' ? (transport.bus.lost(name) ?? undefined) : undefined,
        paused: paused(name),
      })),
    stop: async (name) => {
      const c = running(name);
      if (!c) throw conclaveError('NOT_FOUND', `${name} is not running: restart it first`);
      const wasPaused = paused(name);
      await stopNode(c);
      return `${name} stopped (gracefully: a leader hands leadership over first${wasPaused ? '; it was resumed first' : ''})`;
    },
    restart: async (name) => {
      if (running(name)) throw conclaveError('BUSY', `${name} is running: stop it first`);
      if (!names.has(name) && name !== 'intruder') throw conclaveError('NOT_FOUND', `the demo has no node named ${name}: add it instead`);
      await start(name);
      return `${name} restarted from its data dir`;
    },
    transfer: async (to) => {
      const leader = leaderNow();
      const result = await leader.cluster.transferLeadership(to ?? undefined);
      return result.transferred ? `leadership handed from ${leader.name} to ${result.leader}` : `${result.leader} leads already`;
    },
    put: async (key, value) => {
      const member = clusterMembers()[0];
      if (!member) throw conclaveError('NO_LEADER', 'no node of the cluster is running: restart one');
      await member.propose({ op: 'put', key, value });
      return `${key} = ${JSON.stringify(value)} written through ${member.name} (forwarded to the leader)`;
    },
    cutOff: async (name) => {
      if (!running(name)) throw conclaveError('NOT_FOUND', `${name} is not running`);
      faultyBus('cutting a node off').cutOff(name);
      return `${name} is cut off from the others: what it sends and what is sent to it is lost (its charts still reach this page)`;
    },
    reconnect: async (name) => {
      const bus = faultyBus('cutting a node off');
      if (!bus.isCutOff(name)) throw conclaveError('BUSY', `${name} is not cut off`);
      const lost = bus.reconnect(name);
      return `${name} is connected to the others again after ${(lost.cutMs / 1000).toFixed(1)} s cut off: ${lost.sent} message${lost.sent === 1 ? '' : 's'} it sent and ${lost.received} sent to it were lost`;
    },
    pause: async (name) => {
      const bus = faultyBus('pausing a node');
      const clock = clocks.get(name);
      if (!running(name) || !clock) throw conclaveError('NOT_FOUND', `${name} is not running`);
      if (paused(name)) throw conclaveError('BUSY', `${name} is paused already: resume it`);
      bus.pause(name);
      clock.pause();
      return `${name} is paused, as SIGSTOP would: its timers stop, and what it sends and what is sent to it waits (its charts too)`;
    },
    resume: async (name) => {
      if (!paused(name)) throw conclaveError('BUSY', `${name} is not paused`);
      return resumeNode(name);
    },
    add: async (name) => {
      if (name === 'intruder') throw conclaveError('BUSY', 'intruder belongs to another cluster: the join rule refuses it (that is what it is for)');
      const leader = leaderNow();
      names.add(name);
      if (!running(name)) await start(name);
      const result = await leader.cluster.add(name, { timeoutMs: 30_000 });
      return result.outcome === 'added' ? `${name} added as a voter (node id ${result.nodeId})` : `${name} is a member already`;
    },
    remove: async (name) => {
      const leader = leaderNow();
      if (leader.name === name) throw conclaveError('BUSY', `${name} leads: hand leadership over first (Transfer leadership), then remove it`);
      await leader.cluster.remove(name, { timeoutMs: 30_000 });
      const c = running(name);
      if (c) await stopNode(c);
      return `${name} removed from the cluster and stopped`;
    },
  };
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await inspector?.stop();
      for (const c of [...controllers].reverse()) await stopNode(c);
      if (transport.kind === 'in-process') await transport.bus.close();
      if (ownsData) await rm(dataRoot, { recursive: true, force: true });
    })());

  // Ctrl-C at any moment, during the tour too: stop cleanly; a second one forces
  let interrupted = false;
  let signals = 0;
  const stopped = new Promise<void>((resolve) => {
    const onSignal = () => {
      signals++;
      if (signals > 1) process.exit(130);
      interrupted = true;
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

  if (transport.kind === 'nats') {
    out(`Conclave demo — three controllers on NATS at ${transport.servers.join(',')}, subject prefix ${transport.prefix}`);
    out('(each controller, and the intruder later, has its own NATS connection, as separate processes would)');
  } else {
    out('Conclave demo — three controllers on the embedded in-process bus (set NATS_URL or --nats to run on NATS)');
  }
  out(`data in ${dataRoot}`);
  out();

  const tour = async (): Promise<void> => {
    step(1, `starting ctrl1, ctrl2, ctrl3: each opens its store and loads its identity before touching the ${onNats ? 'NATS server' : 'bus'}`);
    const [ctrl1, ctrl2, ctrl3] = [await start('ctrl1'), await start('ctrl2'), await start('ctrl3')] as [Controller, Controller, Controller];
    for (const c of [ctrl1, ctrl2, ctrl3]) out(`   ${c.name}: phase ${c.phase}, cluster id ${c.status().clusterId ?? 'null'}`);
    if (flags.inspect) {
      // the inspector has a bus connection of its own: stopping a node from the page must not blind it
      const inspectorBus =
        transport.kind === 'in-process'
          ? transport.bus.connect('inspector')
          : await connectNats({ ...transport.nats, name: 'conclave-demo-inspector', timeoutMs: NATS_CONNECT_TIMEOUT_MS });
      const served = await startInspector({ bus: inspectorBus, prefix: transport.prefix, listen: flags.inspect, record: flags.record, logger: ctrl1.logFor('inspector'), controls, public: flags.inspectPublic });
      inspector = {
        url: served.url,
        stop: async () => {
          await served.stop();
          await inspectorBus.close();
        },
      };
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
    if (transport.kind === 'nats') {
      const via = `--nats ${transport.servers.join(',')} --prefix ${transport.prefix}`;
      out('The cluster is on your NATS server: talk to it with the CLI from another terminal while the demo runs:');
      out(`  npx conclave cluster list --via ctrl2 ${via}`);
      out(`  CONCLAVE_OPERATOR_KEY=${operatorKey?.file} npx conclave kv put color blue --via ctrl3 ${via} && npx conclave kv get color --via ctrl1 ${via}`);
      out(`  npx conclave status --node intruder ${via}     # the other cluster`);
      out('One process per controller: npm run example:multi-process');
    } else {
      out('Next, the same on a real NATS server (nats-server -p 4222 in another terminal):');
      out('  NATS_URL=nats://127.0.0.1:4222 npm start               # this demo, on NATS');
      out('  npm run example:multi-process                          # one `conclave run` process per controller');
      out('  or by hand: the README\'s "Quick tour (real NATS)" — an operator key, `conclave run`, `conclave init`');
    }
    out();
  };

  const touring = tour();
  const ended = await Promise.race([touring.then(() => 'done' as const), stopped.then(() => 'interrupted' as const)]).catch(async (err: unknown) => {
    if (interrupted) return 'interrupted' as const;
    // the tour failed: stop what it started, then report the tour's error
    await stop().catch((stopErr: unknown) => process.stderr.write(`error: demo did not stop cleanly either: ${(stopErr as Error).message}\n`));
    throw err;
  });
  if (ended === 'interrupted') {
    // what the tour was waiting for fails once the controllers stop: that is the interruption, not an error
    touring.catch(() => undefined);
    await stopped;
    return;
  }
  if (flags.once) {
    await stop();
    return;
  }
  out('The demo keeps running; press Ctrl-C to stop it.');
  await stopped;
}

/** the demo's operator key in `dir` (made on the first run there, taken again on the next) and its public key */
async function demoOperatorKey(dir: string): Promise<{ file: string; publicKey: string }> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'operator.key');
  return existsSync(file) ? { file, publicKey: operatorSigner(file).publicKey } : createOperatorKey(file);
}
