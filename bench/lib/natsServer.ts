// The bench's nats-server: the test helper's (free loopback port, readiness wait, no leaks on exit),
// plus the server version for the report and a clear error when it is not installed.
import { spawnSync } from 'node:child_process';
import { startNatsServer as startTestServer } from '../../test/helpers/natsServer.ts';

const BINARY = process.env.NATS_SERVER_BIN ?? 'nats-server';

export interface NatsServer {
  url: string;
  version: string;
  stop(): Promise<void>;
}

export async function startNatsServer(): Promise<NatsServer> {
  const probe = spawnSync(BINARY, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(`nats-server is not installed (${BINARY}); the NATS scenarios need it: apt-get install nats-server`);
  }
  const server = await startTestServer();
  return { url: server.url, version: probe.stdout.trim(), stop: () => server.stop() };
}
