// Test helper: a real nats-server, a temporary folder, and `conclave run` processes configured by
// JSON files in it — the multi-process, through-the-CLI setup of the acceptance tests. Call inside a
// `describe` (it registers that suite's before/after hooks); every process is killed afterwards.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import type { MemberInfo } from '../../actors/member.ts';
import type { AdminOp, AdminReply, AdminRequest } from '../../runtime/wire/adminProtocol.ts';
import { adminRequest } from '../../runtime/cli/client.ts';
import { connectNats } from '../../runtime/transport/index.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { baseEnv, type CliResult, CliProcess, runCli } from './cli.ts';
import { testOperator } from './testOperator.ts';
import { type NatsServerHandle, startNatsServer } from './natsServer.ts';

/** the part of `status --json` these tests read */
export interface NodeStatus {
  name: string;
  nodeId: string;
  clusterId: string | null;
  phase: string;
  role: string;
  leader: string | null;
  members: MemberInfo[];
}

export interface CliCluster {
  readonly nats: NatsServerHandle;
  /** the temporary folder: data dirs are `<dir>/<name>`, configs `<dir>/<name>.json` */
  readonly dir: string;
  /** a client connection of the test itself */
  readonly bus: Bus;
  /** NATS_URL and CONCLAVE_PREFIX set for every CLI process */
  readonly env: NodeJS.ProcessEnv;
  readonly procs: Map<string, CliProcess>;
  /** write `<dir>/<name>.json` (name, data dir, raft timing, then `config`) and start `conclave run` on it */
  spawn(name: string, config?: Record<string, unknown>, extraArgs?: string[]): Promise<CliProcess>;
  /** spawn, then wait until it says it is running */
  run(name: string, config?: Record<string, unknown>, extraArgs?: string[]): Promise<CliProcess>;
  status(node: string): Promise<NodeStatus>;
  admin<O extends AdminOp>(node: string, type: O, body: AdminRequest<O>, timeoutMs?: number): Promise<AdminReply<O>>;
  /** one CLI command with this cluster's environment */
  cli(args: string[]): Promise<CliResult>;
}

export function cliCluster(opts: { prefix: string; tmpPrefix: string }): CliCluster {
  let nats: NatsServerHandle | undefined;
  let dir = '';
  let bus: Bus | undefined;
  let env: NodeJS.ProcessEnv = {};
  const procs = new Map<string, CliProcess>();
  before(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), opts.tmpPrefix));
    env = baseEnv({ NATS_URL: nats.url, CONCLAVE_PREFIX: opts.prefix });
    bus = await connectNats({ servers: nats.url, name: `${opts.prefix}-test` });
  });
  after(async () => {
    for (const p of procs.values()) await p.kill('SIGKILL');
    await bus?.close();
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const theBus = (): Bus => {
    if (!bus) throw new Error('cliCluster: the bus exists once the suite has started');
    return bus;
  };
  const spawn = async (name: string, config: Record<string, unknown> = {}, extraArgs: string[] = []) => {
    const file = join(dir, `${name}.json`);
    await writeFile(file, JSON.stringify({ name, dataDir: join(dir, name), raft: { heartbeatMs: 50, electionTimeoutMs: 500 }, ...config }));
    const p = new CliProcess(['run', '--config', file, '--log-level', 'info', ...extraArgs], { env });
    procs.set(name, p);
    return p;
  };
  const admin = <O extends AdminOp>(node: string, type: O, body: AdminRequest<O>, timeoutMs = 30_000) => adminRequest(theBus(), opts.prefix, node, type, body, timeoutMs, testOperator().signer);
  return {
    get nats() {
      if (!nats) throw new Error('cliCluster: nats-server starts with the suite');
      return nats;
    },
    get dir() {
      return dir;
    },
    get bus() {
      return theBus();
    },
    get env() {
      return env;
    },
    procs,
    spawn,
    async run(name, config, extraArgs) {
      const p = await spawn(name, config, extraArgs);
      // generous: a loaded 2-core machine can take tens of seconds to start a tsx process
      await p.waitForOutput(/controller .* is running/, 60_000);
      return p;
    },
    status: (node) => admin(node, 'status', {}, 2000) as Promise<NodeStatus>,
    admin,
    cli: (args) => runCli(args, { env, timeoutMs: 60_000 }),
  };
}
