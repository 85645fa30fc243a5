// An HTTP service (node:http) embedding a controller: a replicated service registry. Run three
// instances (three processes) on one NATS server; any instance serves reads and writes, and the
// registry survives the loss of one instance.
//   npm run example:host-app -- --name svc1 --port 8081 --bootstrap --members svc2,svc3
//   npm run example:host-app -- --name svc2 --port 8082
//   npm run example:host-app -- --name svc3 --port 8083
// Endpoints: GET /services[?stale=1] · PUT /services/<name> {"url": "http://…"} · DELETE /services/<name> · GET /health
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConclaveError, type Controller, createLogger, type LogLevel, startController, UsageError } from 'conclave';
import { invalidCommand, type RegistryCommand, type RegistryResult, ServiceRegistry } from './registry.ts';

const { values: args } = parseArgs({
  options: {
    name: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    nats: { type: 'string', default: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' },
    prefix: { type: 'string', default: 'registry' },
    'data-dir': { type: 'string' },
    bootstrap: { type: 'boolean', default: false },
    members: { type: 'string', default: '' },
    'log-level': { type: 'string', default: 'warn' },
  },
});
if (!args.name || !args.port) {
  console.error('error: --name and --port are required, e.g. --name svc1 --port 8081 [--bootstrap --members svc2,svc3]');
  process.exit(2);
}
const name = args.name;

let controller: Controller;
try {
  controller = await startController({
    name,
    dataDir: args['data-dir'] ?? join(tmpdir(), 'conclave-host-app', name),
    prefix: args.prefix,
    transport: { nats: { servers: args.nats } },
    // the registry is this app's own replicated state
    state: new ServiceRegistry(),
    // the bootstrapping instance adds the others as soon as they answer
    initialMembers: args.members ? args.members.split(',') : [],
    logger: createLogger({ level: args['log-level'] as LogLevel }),
  });
} catch (err) {
  console.error(`error: ${(err as Error).message}`);
  process.exit(err instanceof ConclaveError ? err.exitCode : 1);
}
if (args.bootstrap && controller.status().phase === 'uninitialized') {
  const clusterId = await controller.init();
  console.log(`${name} initialized cluster ${clusterId}`);
}
controller.on('leaderChanged', ({ leader, term }) => console.log(`${name}: leader is ${leader ?? 'unknown'} (term ${term})`));
controller.on('membershipChanged', ({ members }) => console.log(`${name}: members ${members.map((m) => m.name + (m.voter ? '' : ' (learner)')).join(', ')}`));

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', ...(status === 503 ? { 'retry-after': '1' } : {}) });
  res.end(`${JSON.stringify(body)}\n`);
}

/** a Conclave error as an HTTP answer: the caller's mistake (400) or "try again / elsewhere" (503) */
function sendError(res: ServerResponse, err: unknown): void {
  if (err instanceof ConclaveError) send(res, err instanceof UsageError ? 400 : 503, { error: err.message, code: err.code });
  else send(res, 500, { error: (err as Error).message });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 64 * 1024) throw new Error('body too large');
  }
  return text ? JSON.parse(text) : {};
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const s = controller.status();
  if (url.pathname === '/health') {
    send(res, 200, { name, phase: s.phase, role: s.role, leader: s.leader, term: s.term, clusterId: s.clusterId, appliedIndex: s.appliedIndex, members: s.members.map((m) => ({ name: m.name, voter: m.voter })) });
    return;
  }
  if (url.pathname === '/services' && req.method === 'GET') {
    const stale = url.searchParams.get('stale') === '1';
    const services = await controller.read({ op: 'list' }, { stale });
    send(res, 200, { servedBy: name, stale, services });
    return;
  }
  const match = /^\/services\/([^/]+)$/.exec(url.pathname);
  if (match && (req.method === 'PUT' || req.method === 'DELETE')) {
    const service = decodeURIComponent(match[1]!);
    const body = req.method === 'PUT' ? ((await readJson(req)) as { url?: unknown }) : {};
    const command = (req.method === 'PUT' ? { op: 'register', name: service, url: body.url } : { op: 'deregister', name: service }) as RegistryCommand;
    const invalid = invalidCommand(command);
    if (invalid) return send(res, 400, { error: invalid });
    const result = (await controller.propose(command)) as RegistryResult;
    send(res, result.ok ? 200 : 400, { servedBy: name, ...result });
    return;
  }
  send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
}

const server = createServer((req, res) => {
  handle(req, res).catch((err: unknown) => sendError(res, err));
});
server.listen(Number(args.port), args.host, () => {
  console.log(`${name} serving the registry on http://${args.host}:${args.port} (phase ${controller.status().phase})`);
});

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1); // a second Ctrl-C forces
    stopping = true;
    server.close();
    controller.stop().then(
      () => {
        console.log(`${name} stopped`);
        process.exit(0);
      },
      (err: unknown) => {
        console.error(`error: ${name} did not stop cleanly: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  });
}
