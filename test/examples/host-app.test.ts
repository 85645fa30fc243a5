// The host-app example (acceptance 2): three HTTP instances, each embedding a controller, as three
// processes on a real nats-server (what `npm run example:host-app -- …` runs). SIGKILL one (the
// leader, the harder case): the registry is still served by the other two, consistent (the same
// list from both) and still accepting writes.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { ROOT, waitUntil } from '../helpers/cli.ts';
import { freePort, type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';
import { tmpDirs } from '../helpers/tmp.ts';
import { ExampleProcess } from './run.ts';

const MAIN = join(ROOT, 'examples/host-app/main.ts');
const tmp = tmpDirs('conclave-host-app-');
const instances = new Map<string, { proc: ExampleProcess; url: string }>();
let nats: NatsServerHandle | null = null;

after(async () => {
  for (const { proc } of instances.values()) await proc.kill('SIGKILL');
  await nats?.stop();
  tmp.cleanup();
});

interface Health {
  phase: string;
  role: string;
  leader: string | null;
  members: Array<{ name: string; voter: boolean }>;
}

async function http(url: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function health(name: string): Promise<Health | null> {
  try {
    return (await http(`${instances.get(name)!.url}/health`)).body as unknown as Health;
  } catch {
    return null; // not listening yet
  }
}

/** a write through `name`, retried while the cluster elects a new leader (503) */
async function register(name: string, service: string, url: string): Promise<Record<string, unknown>> {
  let last: unknown = null;
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
    const r = await http(`${instances.get(name)!.url}/services/${service}`, { method: 'PUT', body: JSON.stringify({ url }) });
    if (r.status === 200) return r.body;
    assert.equal(r.status, 503, `only "retry" answers are expected while the leader changes: ${JSON.stringify(r)}`);
    last = r.body;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`the write through ${name} was not accepted within 30 s: ${JSON.stringify(last)}`);
}

it('host-app: SIGKILL one instance; the registry is still served, consistent, and accepts writes', { skip: natsServerSkipReason() }, async () => {
  nats = await startNatsServer();
  const dataRoot = tmp.make();
  for (const name of ['svc1', 'svc2', 'svc3']) {
    const port = await freePort();
    const extra = name === 'svc1' ? ['--bootstrap', '--members', 'svc2,svc3'] : [];
    const proc = new ExampleProcess(MAIN, ['--name', name, '--port', String(port), '--nats', nats.url, '--data-dir', join(dataRoot, name), ...extra]);
    instances.set(name, { proc, url: `http://127.0.0.1:${port}` });
  }
  const outputs = () => [...instances].map(([n, i]) => `=== ${n}\n${i.proc.output()}`).join('\n');
  for (const name of instances.keys()) {
    await waitUntil(
      async () => {
        const h = await health(name);
        return h?.phase === 'member' && h.members.filter((m) => m.voter).length === 3;
      },
      { what: `${name} is a member of a 3-voter cluster`, timeoutMs: 40_000, context: outputs },
    );
  }

  const first = await register('svc2', 'api', 'http://10.0.0.1:8080');
  assert.equal(first.ok, true);
  const bad = await http(`${instances.get('svc3')!.url}/services/api`, { method: 'PUT', body: JSON.stringify({ url: 'not a url' }) });
  assert.equal(bad.status, 400);

  const leader = (await health('svc1'))!.leader!;
  assert.ok(instances.has(leader), `a leader is known: ${leader}`);
  await instances.get(leader)!.proc.kill('SIGKILL');
  const survivors = [...instances.keys()].filter((n) => n !== leader);

  // writes are still accepted (once a new leader is elected), through either survivor
  const second = await register(survivors[0]!, 'db', 'http://10.0.0.2:5432');
  assert.equal(second.ok, true, JSON.stringify(second));
  assert.equal(second.servedBy, survivors[0]);
  await register(survivors[1]!, 'cache', 'http://10.0.0.3:6379');

  // the same list from both survivors: linearizable reads, then each one's own copy
  const lists = await Promise.all(survivors.map(async (n) => (await http(`${instances.get(n)!.url}/services`)).body));
  assert.deepEqual(lists[0]!.services, lists[1]!.services);
  assert.deepEqual(
    (lists[0]!.services as Array<{ name: string }>).map((s) => s.name),
    ['api', 'cache', 'db'],
  );
  await waitUntil(
    async () => {
      const stale = await Promise.all(survivors.map(async (n) => JSON.stringify((await http(`${instances.get(n)!.url}/services?stale=1`)).body.services)));
      return stale[0] === stale[1] && stale[0] === JSON.stringify(lists[0]!.services);
    },
    { what: 'both survivors hold the same registry locally', context: outputs },
  );

  // a clean stop
  for (const n of survivors) {
    const exit = await instances.get(n)!.proc.kill('SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, outputs());
  }
});
