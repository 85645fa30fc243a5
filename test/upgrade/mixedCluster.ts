// Test helper for the upgrade tests: `conclave run` processes of the previous release (installed
// from its packed tarball, test/helpers/previousRelease.ts) and of this build, side by side on one
// real nats-server, each with its own data dir, asked through the admin protocol.
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminRequest } from '../../runtime/cli/client.ts';
import { connectNats } from '../../runtime/transport/index.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import type { StatusReply } from '../../runtime/wire/adminProtocol.ts';
import { baseEnv, type CliResult, CliProcess, killLeftoverProcesses, runCli, runProgram, TsProcess, waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, startNatsServer } from '../helpers/natsServer.ts';
import { type InstalledRelease, installRelease, PREVIOUS_RELEASE } from '../helpers/previousRelease.ts';
import { testOperator } from '../helpers/testOperator.ts';

/** release 0.1.0 reads no $CONCLAVE_PREFIX for `run`: the default prefix, on a server of the test's own */
export const PREFIX = 'conclave';

export interface MixedCluster {
  readonly bus: Bus;
  readonly release: InstalledRelease;
  readonly procs: Map<string, TsProcess>;
  dataDir(name: string): string;
  /** start `conclave run` of the previous release (`old`) or of this build (`new`); `args` are added to run's */
  start(name: string, build: 'old' | 'new', args?: string[]): Promise<TsProcess>;
  /** the CLI of the previous release or of this build, to completion */
  cli(build: 'old' | 'new', args: string[]): Promise<CliResult>;
  status(node: string): Promise<StatusReply>;
  ask<T>(node: string, type: string, body: object, timeoutMs?: number): Promise<T>;
  /** both ends' output, for a failure message */
  output(name: string): string;
  close(): Promise<void>;
}

export async function mixedCluster(): Promise<MixedCluster> {
  const release = await installRelease();
  const nats: NatsServerHandle = await startNatsServer();
  const bus = await connectNats({ servers: nats.url, name: 'test-upgrade' });
  const dir = await mkdtemp(join(tmpdir(), 'conclave-upgrade-'));
  const procs = new Map<string, TsProcess>();
  const env = () => baseEnv({ NATS_URL: nats.url });
  const ask = <T>(node: string, type: string, body: object, timeoutMs = 5000) => adminRequest(bus, PREFIX, node, type as 'status', body as never, timeoutMs, testOperator().signer) as Promise<T>;
  return {
    bus,
    release,
    procs,
    dataDir: (name) => join(dir, name),
    async start(name, build, args = []) {
      const runArgs = ['run', '--name', name, '--data-dir', join(dir, name), ...args];
      const p = build === 'old' ? new TsProcess(release.main, runArgs, { env: env() }) : new CliProcess(runArgs, { env: env() });
      procs.set(name, p);
      await p.waitForOutput(/controller .* is running/);
      return p;
    },
    cli: (build, args) =>
      build === 'old' ? runProgram(process.execPath, ['--import', 'tsx', release.main, ...args], { env: env(), label: `conclave ${PREVIOUS_RELEASE} ${args.join(' ')}` }) : runCli(args, { env: env() }),
    status: (node) => ask<StatusReply>(node, 'status', {}),
    ask,
    output: (name) => procs.get(name)?.output() ?? `(${name} never started)`,
    async close() {
      // UPGRADE_TEST_LOGS=DIR keeps every process's output there (to look at a run afterwards)
      if (process.env.UPGRADE_TEST_LOGS) for (const [n, p] of procs) writeFileSync(join(process.env.UPGRADE_TEST_LOGS, `${n}.log`), p.stdout + p.stderr);
      await killLeftoverProcesses();
      await bus.close().catch(() => {});
      await nats.stop();
      await release.remove();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** wait until `check` holds, asking again after any error (a node being replaced does not answer) */
export function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  return waitUntil(
    async () => {
      try {
        return await check();
      } catch {
        return false;
      }
    },
    { timeoutMs, what },
  );
}
