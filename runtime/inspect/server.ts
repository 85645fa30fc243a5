// The inspector's HTTP side: the page (static files, elkjs served from node_modules: no external
// requests), a JSON API and a Server-Sent Events channel that pushes every frame to the page.
// Every request must name this server in its Host header, and every response carries the
// security headers (hardening.ts).
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { conclaveError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { RateLimitedLog } from '../log/rateLimit.ts';
import type { Frame, Inspector } from './inspector.ts';
import { allMachineDefinitions } from './machines.ts';
import type { Recording } from './replay.ts';
import { handleControl, type InspectorControls } from './controls.ts';
import { allowedHostNames, bindRefusal, hostRefusal, isLoopback, SECURITY_HEADERS } from './hardening.ts';

const PAGE_DIR = fileURLToPath(new URL('./page/', import.meta.url));
const ELK_FILE = createRequire(import.meta.url).resolve('elkjs/lib/elk.bundled.js');
/** a page that cannot keep up is disconnected (its EventSource reconnects and starts afresh) */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: `${PAGE_DIR}index.html`, type: 'text/html; charset=utf-8' },
  '/index.html': { file: `${PAGE_DIR}index.html`, type: 'text/html; charset=utf-8' },
  '/app.js': { file: `${PAGE_DIR}app.js`, type: 'text/javascript; charset=utf-8' },
  '/model.js': { file: `${PAGE_DIR}model.js`, type: 'text/javascript; charset=utf-8' },
  '/charts.js': { file: `${PAGE_DIR}charts.js`, type: 'text/javascript; charset=utf-8' },
  '/dom.js': { file: `${PAGE_DIR}dom.js`, type: 'text/javascript; charset=utf-8' },
  '/elections.js': { file: `${PAGE_DIR}elections.js`, type: 'text/javascript; charset=utf-8' },
  '/focus.js': { file: `${PAGE_DIR}focus.js`, type: 'text/javascript; charset=utf-8' },
  '/lanes.js': { file: `${PAGE_DIR}lanes.js`, type: 'text/javascript; charset=utf-8' },
  '/overview.js': { file: `${PAGE_DIR}overview.js`, type: 'text/javascript; charset=utf-8' },
  '/controls.js': { file: `${PAGE_DIR}controls.js`, type: 'text/javascript; charset=utf-8' },
  '/messages.js': { file: `${PAGE_DIR}messages.js`, type: 'text/javascript; charset=utf-8' },
  '/sequence.js': { file: `${PAGE_DIR}sequence.js`, type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: `${PAGE_DIR}style.css`, type: 'text/css; charset=utf-8' },
  '/vendor/elk.bundled.js': { file: ELK_FILE, type: 'text/javascript; charset=utf-8' },
};

export interface InspectorServerOptions {
  /** HOST:PORT (port 0: any free port) */
  listen: string;
  /** live mode */
  inspector?: Inspector;
  /** replay mode */
  recording?: Recording;
  replayFile?: string;
  logger?: Logger;
  /** hands-on controls (the demo only): the page shows them and posts to /api/control */
  controls?: InspectorControls;
  /** serve on an address other than loopback (refused without it: hardening.ts bindRefusal) */
  public?: boolean;
}

export interface InspectorServer {
  url: string;
  port: number;
  /** requests refused because their Host header named another address */
  readonly refusedHosts: number;
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw conclaveError('USAGE', `listen address ${JSON.stringify(listen)} is not HOST:PORT (e.g. 127.0.0.1:7420)`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** HOST:PORT parsed, and refused (CONFIG) when it is not loopback and `isPublic` is not set */
export function checkListen(listen: string, isPublic: boolean | undefined): { host: string; port: number } {
  const parsed = parseListen(listen);
  const refusal = bindRefusal(listen, parsed.host, isPublic);
  if (refusal !== null) throw conclaveError('CONFIG', refusal);
  return parsed;
}

export async function startInspectorServer(opts: InspectorServerOptions): Promise<InspectorServer> {
  const { host, port } = checkListen(opts.listen, opts.public);
  if (!isLoopback(host)) opts.logger?.warn({ listen: opts.listen }, 'the inspector serves on an address other machines may reach: it shows the cluster\'s ids, terms, members and messages to whoever reaches it');
  const cache = new Map<string, Buffer>();
  const streams = new Set<ServerResponse>();
  const machines = JSON.stringify({ machines: allMachineDefinitions() });
  const mode = opts.recording ? 'replay' : 'live';

  const json = (res: ServerResponse, status: number, body: unknown) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(text);
  };

  const lastCluster = (): unknown => {
    if (opts.inspector) return opts.inspector.cluster();
    const frames = opts.recording?.frames ?? [];
    for (let i = frames.length - 1; i >= 0; i--) {
      const f = frames[i]!;
      if (f.kind === 'cluster') return { nodes: f.nodes };
    }
    return { nodes: [] };
  };

  const stream = (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write('retry: 1000\n\n');
    const send = (event: string, data: unknown) => {
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      if (res.writableLength > MAX_BUFFERED_BYTES) res.end();
    };
    send('init', { mode, ...(opts.inspector ? opts.inspector.current() : { nodes: [], events: [], notable: [] }), cluster: lastCluster() });
    const off = opts.inspector?.onFrame((frame: Frame) => send('frame', frame));
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    streams.add(res);
    const close = () => {
      clearInterval(keepAlive);
      off?.();
      streams.delete(res);
    };
    req.on('close', close);
    res.on('close', close);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://inspector');
    if (req.method === 'POST' && url.pathname === '/api/control') {
      if (!opts.controls) return json(res, 404, { ok: false, error: 'this inspector has no controls (only the demo has)' });
      return handleControl(opts.controls, req, res);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'only GET' });
    const file = STATIC[url.pathname];
    if (file) {
      let body = cache.get(file.file);
      if (!body) {
        body = await readFile(file.file);
        cache.set(file.file, body);
      }
      res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-cache' });
      res.end(body);
      return;
    }
    switch (url.pathname) {
      case '/api/cluster':
        return json(res, 200, lastCluster());
      case '/api/machines':
        return json(res, 200, machines);
      case '/api/mode':
        return json(res, 200, { mode, ...(opts.replayFile ? { file: opts.replayFile } : {}) });
      case '/api/controls':
        return json(res, 200, opts.controls ? { enabled: true, nodes: opts.controls.nodes() } : { enabled: false, nodes: [] });
      case '/api/events': {
        const node = url.searchParams.get('node');
        const type = url.searchParams.get('type');
        const limit = Math.min(Number(url.searchParams.get('limit') ?? 500) || 500, 5000);
        const current = opts.inspector?.current();
        // refusals and handshake steps are kept longer than the routine events that would push them out
        const all = current ? [...current.notable.filter((r) => !current.events.includes(r)), ...current.events].sort((a, b) => a.t - b.t) : [];
        const events = all.filter((e) => (!node || e.node === node) && (!type || ('type' in e && e.type === type) || e.k === type));
        return json(res, 200, { events: events.slice(-limit) });
      }
      case '/api/recording':
        if (!opts.recording) return json(res, 404, { error: 'not in replay mode: start with `conclave inspect --replay FILE`' });
        return json(res, 200, opts.recording);
      case '/api/stream':
        return stream(req, res);
      case '/favicon.ico':
        res.writeHead(204);
        res.end();
        return;
      default:
        return json(res, 404, { error: `no such page: ${url.pathname}` });
    }
  };

  // known once listening (port 0: the port the system picked)
  let boundPort = 0;
  const hostNames = allowedHostNames(host);
  const refusalLog = opts.logger ? new RateLimitedLog(opts.logger) : null;
  let refusedHosts = 0;
  const server: Server = createServer((req, res) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    const refusal = hostRefusal(req.headers.host, hostNames, boundPort);
    if (refusal !== null) {
      refusedHosts++;
      refusalLog?.warn('inspector-host', { host: req.headers.host?.slice(0, 100), refused: refusedHosts }, `inspector refused a request: ${refusal}`);
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`refused: ${refusal}\n`);
      return;
    }
    handle(req, res).catch((err: unknown) => {
      opts.logger?.error({ err, url: req.url }, 'inspector request failed');
      if (!res.headersSent) json(res, 500, { error: (err as Error).message });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(conclaveError(err.code === 'EADDRINUSE' ? 'CONFIG' : 'IO', `inspector cannot listen on ${opts.listen}: ${err.code === 'EADDRINUSE' ? 'the address is in use (pick another with --listen/--inspect HOST:PORT)' : err.message}`)),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  boundPort = address.port;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}/`,
    port: address.port,
    get refusedHosts() {
      return refusedHosts;
    },
    close: async () => {
      for (const res of streams) res.end();
      streams.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
