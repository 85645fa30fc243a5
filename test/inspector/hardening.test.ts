// The inspector's HTTP server answers only requests that name it: a Host header of another name or
// port (DNS rebinding: an attacker's page whose name now points at 127.0.0.1) is refused with 403 —
// the hands-on controls included — and every response carries nosniff, no framing, no referrer and a
// Content-Security-Policy that the page itself satisfies (checked in headless Chromium).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { ConclaveError } from '../../runtime/errors.ts';
import { runCli } from '../helpers/cli.ts';
import { request } from 'node:http';
import { connect } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { allowedHostNames, hostRefusal } from '../../runtime/inspect/hardening.ts';
import { type InspectorServer, startInspectorServer } from '../../runtime/inspect/server.ts';
import { chromiumSkipReason, launchChromium, openWatchedPage } from '../helpers/chromium.ts';
import { fakeControls } from '../helpers/fakeControls.ts';

const RECORDING = { header: { format: 'conclave-inspect-recording' as const, version: 1, prefix: 'p', startedAt: 0 }, frames: [] };

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** one HTTP request with the Host header we choose (fetch would not let us) */
function ask(port: number, path: string, host: string, opts: { method?: string; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: { host, ...(opts.body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      // the event stream never ends: its first chunk is enough
      res.on('data', (chunk: string) => {
        body += chunk;
        if (path === '/api/stream') res.destroy();
      });
      const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      res.on('end', done);
      res.on('close', done);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** HTTP/1.0 without any Host header (node's client always sends one) */
function askWithoutHost(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end('GET /api/cluster HTTP/1.0\r\n\r\n'));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('the inspector refuses other hosts and sends security headers', () => {
  let server: InspectorServer;
  const done: string[] = [];
  const controls = fakeControls(done);
  before(async () => {
    server = await startInspectorServer({ listen: '127.0.0.1:0', recording: RECORDING, controls });
  });
  after(async () => {
    await server?.close();
  });

  it('a forged Host (another name, another port, none at all) gets 403 with the reason; the controls are not reached', async () => {
    const { port } = server;
    const refusedBefore = server.refusedHosts;
    for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1:${port + 1}`, `localhost.evil.example:${port}`, `127.0.0.1:${port}@evil.example`]) {
      const answer = await ask(port, '/api/cluster', host);
      assert.equal(answer.status, 403, `Host ${host}: ${answer.body}`);
      assert.match(answer.body, /refused: Host .* is not this inspector's address .*DNS rebinding/);
    }
    const control = await ask(port, '/api/control', `rebound.example:${port}`, { method: 'POST', body: '{"action":"stop","node":"n1"}' });
    assert.equal(control.status, 403);
    assert.deepEqual(done, [], 'a rebound page cannot stop a node');
    assert.match(await askWithoutHost(port), /^HTTP\/1\.[01] 403[\s\S]*no Host header/);
    assert.equal(server.refusedHosts - refusedBefore, 7, 'every refusal counted');
    // its own address, by any loopback name, is answered
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
      assert.equal((await ask(port, '/api/cluster', host)).status, 200, `Host ${host}`);
    }
    const ok = await ask(port, '/api/control', `127.0.0.1:${port}`, { method: 'POST', body: '{"action":"stop","node":"n1"}' });
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(done, ['stop n1']);
  });

  it('every response carries nosniff, DENY framing, no referrer and the CSP (page, scripts, API, stream, 404, 403)', async () => {
    const own = `127.0.0.1:${server.port}`;
    const answers: Array<[string, Answer]> = [
      ['/', await ask(server.port, '/', own)],
      ['/app.js', await ask(server.port, '/app.js', own)],
      ['/api/cluster', await ask(server.port, '/api/cluster', own)],
      ['/api/stream', await ask(server.port, '/api/stream', own)],
      ['/nowhere', await ask(server.port, '/nowhere', own)],
      ['403', await ask(server.port, '/', 'evil.example')],
    ];
    for (const [what, a] of answers) {
      assert.equal(a.headers['x-content-type-options'], 'nosniff', what);
      assert.equal(a.headers['x-frame-options'], 'DENY', what);
      assert.equal(a.headers['referrer-policy'], 'no-referrer', what);
      assert.match(String(a.headers['content-security-policy']), /default-src 'self'.*frame-ancestors 'none'/, what);
    }
    assert.deepEqual(
      answers.map(([what, a]) => [what, a.status]),
      [['/', 200], ['/app.js', 200], ['/api/cluster', 200], ['/api/stream', 200], ['/nowhere', 404], ['403', 403]],
    );
  });

  it('an address other than loopback is refused (CONFIG, exit 2) unless asked for on purpose, and then warned of', async () => {
    for (const listen of ['0.0.0.0:0', '[::]:0', '192.0.2.1:0']) {
      await assert.rejects(startInspectorServer({ listen, recording: RECORDING }), (err: unknown) => {
        assert.equal((err as ConclaveError).code, 'CONFIG', String(err));
        assert.equal((err as ConclaveError).exitCode, 2);
        assert.match((err as Error).message, /reachable from other machines.*--inspect-public/);
        return true;
      });
    }
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const open = await startInspectorServer({ listen: '0.0.0.0:0', recording: RECORDING, public: true, logger: pino({ level: 'info' }, sink) });
    try {
      assert.equal((await ask(open.port, '/api/cluster', `127.0.0.1:${open.port}`)).status, 200);
      assert.ok(lines.some((l) => l.level === 40 && /other machines may reach/.test(String(l.msg))), JSON.stringify(lines));
    } finally {
      await open.close();
    }
  });

  it('`run --inspect`, `demo --inspect` and `inspect --listen` on an address other than loopback: one error line, exit 2, nothing started', async () => {
    const dataDir = join(tmpdir(), `conclave-bind-${process.pid}`);
    const runs = [
      await runCli(['run', '--name', 'b1', '--data-dir', dataDir, '--inspect', '0.0.0.0:7499']),
      await runCli(['demo', '--inspect', '0.0.0.0:7499', '--once']),
      await runCli(['inspect', '--listen', '0.0.0.0:7499']),
    ];
    for (const r of runs) {
      assert.equal(r.code, 2, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /^error: the inspector would listen on 0\.0\.0\.0:7499, reachable from other machines/);
    }
    assert.equal(existsSync(dataDir), false, 'run opened no store');
  });

  it('the names a bind answers to: loopback binds answer to the loopback names; a wildcard bind to this machine too; a specific address to itself', () => {
    assert.deepEqual([...allowedHostNames('127.0.0.1')].sort(), ['127.0.0.1', '::1', 'localhost']);
    const wildcard = allowedHostNames('0.0.0.0');
    assert.ok(wildcard.has('localhost') && wildcard.has(hostname().toLowerCase()), [...wildcard].join(' '));
    assert.deepEqual([...allowedHostNames('192.0.2.7')], ['192.0.2.7']);
    assert.equal(hostRefusal('192.0.2.7:7420', allowedHostNames('192.0.2.7'), 7420), null);
    assert.notEqual(hostRefusal('localhost:7420', allowedHostNames('192.0.2.7'), 7420), null);
    assert.equal(hostRefusal('localhost', allowedHostNames('localhost'), 80), null, 'port 80 may be left out');
  });
});

describe('the page satisfies its Content-Security-Policy', { skip: chromiumSkipReason() }, () => {
  let browser: Browser;
  let server: InspectorServer;
  before(async () => {
    browser = await launchChromium();
    server = await startInspectorServer({ listen: '127.0.0.1:0', recording: RECORDING });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('boots, lays out every chart (elkjs) and reports no CSP violation', async () => {
    const { page, errors } = await openWatchedPage(browser, server.url);
    await page.waitForFunction('window.conclave?.ready !== undefined', null, { timeout: 30_000 });
    const state = await page.evaluate(`Promise.race([window.conclave.ready.then(() => 'ready'), new Promise((r) => setTimeout(() => r('not ready'), 30000))])`);
    assert.equal(state, 'ready', `${(await page.textContent('body'))?.slice(0, 300)} ${errors.join('; ')}`);
    // boot lays every chart out with elkjs (which needs 'unsafe-eval') before it is ready
    assert.ok((await page.evaluate('window.conclave.focus !== null')) as boolean, 'charts laid out');
    assert.deepEqual(errors, [], 'no page errors, no CSP violation, no external requests');
    await page.close();
  });
});
