// Acceptance, in real headless Chromium (1280×800) over a real nats-server: three controller
// processes and `conclave inspect --record` as a fourth. The overview shows the cluster with three
// nodes and exactly one leader lit, at cluster version 2 with peer authentication on; the leader's
// raft chart opens full size with readable labels (≥ 11 px as drawn) and the leader state lit; the
// leader is killed → a new leader, the killed node unreachable, and on the elections timeline an
// election caused by the election timeout, with its duration; a node of another cluster knocking is
// shown apart, in its own panel with the refusal (both cluster ids), and in the events; the
// recording replayed with `conclave inspect --replay` reproduces the same sequence of leaders and
// the same election.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { Frame } from '../../runtime/inspect/inspector.ts';
import { modelAt } from '../../runtime/inspect/page/model.js';
import { baseEnv, CliProcess, nodeArgsFor, ROOT, waitUntil } from '../helpers/cli.ts';
import { chromiumSkipReason, launchChromium, openWatchedPage } from '../helpers/chromium.ts';
import { freePort, type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';
import { seedStaticCluster } from '../helpers/staticCluster.ts';

const MAIN = fileURLToPath(new URL('../../runtime/cli/main.ts', import.meta.url));
const ARTIFACTS = join(ROOT, 'test', 'artifacts');
const PREFIX = 'insp';
const NAMES = ['n1', 'n2', 'n3'];

class NodeProcess {
  readonly exited: Promise<void>;
  output = '';
  readonly child;
  /** a real `conclave run` process (fast raft timing from its config file) */
  constructor(name: string, dataDir: string, env: NodeJS.ProcessEnv) {
    const config = `${dataDir}.json`;
    writeFileSync(config, JSON.stringify({ name, dataDir, raft: { heartbeatMs: 20, electionTimeoutMs: 150 } }));
    this.child = spawn(process.execPath, [...nodeArgsFor(MAIN), 'run', '--config', config], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d) => (this.output += d));
    this.child.stderr.on('data', (d) => (this.output += d));
    this.exited = new Promise((r) => this.child.on('exit', () => r()));
  }
  async kill(signal: NodeJS.Signals = 'SIGKILL') {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }
}

const skip = natsServerSkipReason() || chromiumSkipReason();

describe('the inspector in a browser', { skip }, () => {
  let nats: NatsServerHandle;
  let dir: string;
  let browser: Browser;
  const nodes = new Map<string, NodeProcess>();
  const tools: CliProcess[] = [];
  let env: NodeJS.ProcessEnv;

  before(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'conclave-inspector-'));
    env = baseEnv({ NATS_URL: nats.url, CONCLAVE_PREFIX: PREFIX });
    browser = await launchChromium();
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    for (const p of nodes.values()) await p.kill();
    for (const t of tools) await t.kill();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const startNode = (name: string, dataDir = join(dir, name)) => {
    const p = new NodeProcess(name, dataDir, env);
    nodes.set(name, p);
    return waitUntil(() => /controller .* is running/.test(p.output), { timeoutMs: 90_000, what: `${name} running`, context: () => p.output });
  };

  async function openPage(url: string): Promise<Page> {
    const { page, errors } = await openWatchedPage(browser, url);
    await page.waitForFunction('window.conclave?.ready !== undefined');
    // a page whose boot failed never becomes ready: fail with what it shows instead of hanging
    const state = await page.evaluate(`Promise.race([window.conclave.ready.then(() => 'ready'), new Promise((r) => setTimeout(() => r('not ready'), 60000))])`);
    if (state !== 'ready') throw new Error(`the inspector page did not become ready: ${(await page.textContent('body'))?.slice(0, 500)} ${errors.join('; ')}`);
    (page as Page & { errors: string[] }).errors = errors;
    return page;
  }

  const litLeaders = (page: Page) => page.$$eval('.node.leader:not(.unreachable)', (els) => els.map((e) => e.getAttribute('data-node')));
  const pageLeaders = (page: Page) => page.evaluate('window.conclave.leaders()') as Promise<string[]>;
  const count = (selector: string) => `document.querySelectorAll(${JSON.stringify(selector)}).length`;

  it('shows the cluster live, follows a failover and a refusal, and replays the recording', async () => {
    const recording = join(dir, 'run.ndjson');
    const port = await freePort();
    const inspector = new CliProcess(['inspect', '--listen', `127.0.0.1:${port}`, '--record', recording], { env });
    tools.push(inspector);
    await inspector.waitForOutput(/inspector serving on (http:\/\/\S+)/, 90_000);
    const url = /inspector serving on (http:\/\/\S+)/.exec(inspector.stdout)![1]!;

    const { clusterId } = await seedStaticCluster(NAMES.map((name) => ({ name, dataDir: join(dir, name) })));
    // the page is open before the cluster starts: it sees every leader the recording sees
    const page = await openPage(url);
    await Promise.all(NAMES.map((n) => startNode(n)));

    await page.waitForFunction(`${count('.node')} === 3`, null, { timeout: 45_000 });
    await page.waitForFunction(`${count('.node.leader:not(.unreachable)')} === 1`, null, { timeout: 45_000 });
    const [oldLeader] = await litLeaders(page);
    assert.ok(oldLeader && NAMES.includes(oldLeader));
    // the card's summary says leader; its raft chart opens full size with the leader state lit
    await page.waitForFunction(`document.querySelector('.node[data-node="${oldLeader}"] button[data-machine="raftRole"] .machine-state')?.textContent === 'leader'`, null, { timeout: 30_000 });
    await page.click(`.node[data-node="${oldLeader}"] button[data-machine="raftRole"]`);
    await page.waitForFunction(`document.querySelector('#focus[open] svg[data-machine="raftRole"] g.state.active') !== null`, null, { timeout: 30_000 });
    // the chart lights the state the node is in now: still leader, unless a busy machine has already
    // seen another election (then the card and the chart agree on the new state)
    await page.waitForFunction(
      `(() => { const lit = [...document.querySelectorAll('#focus svg g.state.active')].map((e) => e.getAttribute('data-state'));
        const now = document.querySelector('.node[data-node="${oldLeader}"] button[data-machine="raftRole"] .machine-state')?.textContent;
        return lit.length === 1 && lit[0] === 'raftRole.' + now; })()`,
      null,
      { timeout: 30_000 },
    );
    const lit = await page.$$eval('#focus svg g.state.active', (els) => els.map((e) => e.getAttribute('data-state')));
    assert.equal(lit.length, 1, 'one state of the raft chart is lit');
    assert.match(lit[0]!, /^raftRole\.\w+$/);
    // every label as drawn: its computed font size times the chart's scale on screen
    const sizes = (await page.evaluate(`[...document.querySelectorAll('#focus svg text')].map((t) => ({ text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a }))`)) as Array<{ text: string; px: number }>;
    assert.ok(sizes.length > 20, 'the chart has its states and transitions labelled');
    const small = sizes.filter((s) => s.px < 11);
    assert.deepEqual(small, [], 'every label of the focused chart is at least 11 px at 100 %');
    process.stdout.write(`# inspector: focused chart labels ${Math.min(...sizes.map((s) => s.px)).toFixed(1)}–${Math.max(...sizes.map((s) => s.px)).toFixed(1)} px\n`);
    await page.screenshot({ path: join(ARTIFACTS, 'inspector-focus.png') });
    await page.keyboard.press('Escape');
    await page.waitForFunction(`!document.querySelector('#focus').open`, null, { timeout: 45_000 });
    // the overview: one panel for the cluster, three members
    const panel = `#clusters section.cluster[data-cluster="${clusterId}"]`;
    await page.waitForFunction(`document.querySelectorAll('${panel} tr[data-member]').length === 3`, null, { timeout: 30_000 });
    // a cluster made by this build: cluster version 2, every member key committed, peer messages authenticated;
    // each member speaks 1..2 (as the leader heard it say in its pings)
    await page.waitForFunction(`document.querySelector('${panel} p.version[data-version="2"][data-authentication="on"]') !== null`, null, { timeout: 30_000 });
    assert.equal((await page.textContent(`${panel} p.version`))?.trim(), 'cluster version 2 · ✓ peer authentication on');
    assert.equal(await page.$(`${panel} .version-note`), null, 'no mixed-version note');
    const speaksCells = `[...document.querySelectorAll('${panel} tr[data-member] td.speaks')].map((td) => td.textContent)`;
    await page.waitForFunction(`${speaksCells}.join() === '1..2,1..2,1..2'`, null, { timeout: 30_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nthe members speak: ${JSON.stringify(await page.evaluate(speaksCells))}`);
    });

    // kill the leader process: a new leader, the killed node unreachable, within a few seconds
    const killedAt = Date.now();
    await nodes.get(oldLeader)!.kill('SIGKILL');
    const unreachable = (name: string) => `document.querySelector('.node[data-node="${name}"]')?.classList.contains('unreachable') === true`;
    const litOther = `[...document.querySelectorAll('.node.leader:not(.unreachable)')].filter((e) => e.getAttribute('data-node') !== ${JSON.stringify(oldLeader)}).length === 1`;
    await page.waitForFunction(`${count('.node.leader:not(.unreachable)')} === 1 && ${litOther} && ${unreachable(oldLeader)}`, null, { timeout: 30_000 });
    const failoverShownMs = Date.now() - killedAt;
    const [newLeader] = await litLeaders(page);
    process.stdout.write(`# inspector: new leader ${newLeader} and ${oldLeader} unreachable shown ${failoverShownMs} ms after SIGKILL\n`);
    // the elections timeline: the election the kill caused, its cause from the survivors' raft charts
    const electionRow = `#election-list tr.election-row[data-leader="${newLeader}"][data-cause="election timeout"]`;
    await page.waitForFunction(`document.querySelector('${electionRow}') !== null`, null, { timeout: 30_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nthe page's elections: ${JSON.stringify(await page.evaluate('window.conclave.elections()'))}`);
    });
    const election = ((await page.evaluate('window.conclave.elections()')) as Array<{ start: number; cause: string; leader: string | null; previousLeader: string | null; durationMs: number | null }>).find(
      (e) => e.leader === newLeader && e.cause === 'election timeout',
    );
    assert.equal(election?.previousLeader, oldLeader, 'the election follows the killed leader');
    assert.ok(typeof election?.durationMs === 'number', 'the election has a duration');
    process.stdout.write(`# inspector: election after the kill: ${JSON.stringify(election)}\n`);
    // the raft messages around that election: the survivors' (pre-)votes, then the new leader's appends
    // that election's row, not merely the newest one like it: under load a follower's pre-vote that the
    // live leader outlasts is listed as another election with the same leader and cause
    await page.click(`#election-list tr.election-row[data-start="${election!.start}"] button.show-messages`);
    const votes = `[...document.querySelectorAll('#sequence-view g.seq-row')].filter((g) => /^(pre-)?vote /.test(g.getAttribute('data-label')) && g.getAttribute('data-from') !== ${JSON.stringify(oldLeader)})`;
    await page.waitForFunction(`${votes}.length > 0`, null, { timeout: 30_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nthe page's message rows: ${JSON.stringify(await page.evaluate('window.conclave.messages()'))}`);
    });
    const around = (await page.evaluate('window.conclave.messages()')) as { rows: Array<{ from: string; to: string; type: string }>; total: number };
    assert.ok(
      around.rows.some((r) => (r.type === 'append' || r.type === 'heartbeat') && r.from === newLeader),
      `the new leader's appends or heartbeats follow its election: ${JSON.stringify(around.rows)}`,
    );
    assert.ok(around.rows.every((r) => NAMES.includes(r.from) && NAMES.includes(r.to)), `every row names its nodes: ${JSON.stringify(around.rows)}`);
    process.stdout.write(`# inspector: ${around.total} raft messages around the election, in ${around.rows.length} rows\n`);
    await page.locator('#sequence').screenshot({ path: join(ARTIFACTS, 'inspector-messages.png') });
    await page.click('#seq-handshakes');
    // the lanes are drawn from the statuses as they arrive: wait for the segments, then check both
    await page.waitForFunction(
      `document.querySelector('#lanes g.seg[data-node="${newLeader}"][data-role="leader"]') !== null && document.querySelector('#lanes g.seg[data-node="${oldLeader}"][data-role="unreachable"]') !== null`,
      null,
      { timeout: 30_000 },
    ).catch(() => undefined);
    assert.ok((await page.$$(`#lanes g.seg[data-node="${newLeader}"][data-role="leader"]`)).length > 0, 'the new leader’s lane turns leader');
    assert.ok((await page.$$(`#lanes g.seg[data-node="${oldLeader}"][data-role="unreachable"]`)).length > 0, 'the killed node’s lane says unreachable');
    await page.locator('#elections').screenshot({ path: join(ARTIFACTS, 'inspector-elections.png') });

    // a node of another cluster knocks: x1's cluster has a voter named like a survivor of ours
    const survivor = NAMES.find((n) => n !== oldLeader)!;
    const foreign = await seedStaticCluster([
      { name: 'x1', dataDir: join(dir, 'x1') },
      { name: survivor, dataDir: join(dir, 'phantom') },
    ]);
    await startNode('x1');
    await page.waitForFunction(`${count('.node[data-node="x1"]')} === 1`, null, { timeout: 30_000 });
    // shown apart: its own panel, with the refusal that keeps it out, naming both cluster ids
    const foreignPanel = `#clusters section.cluster.foreign[data-cluster="${foreign.clusterId}"]`;
    await page.waitForFunction(`document.querySelector('${foreignPanel} tr[data-member="x1"]') !== null && document.querySelector('${foreignPanel} .refusal') !== null`, null, { timeout: 30_000 });
    const why = (await page.textContent(`${foreignPanel} .refusals`)) ?? '';
    assert.ok(why.includes(clusterId) && why.includes(foreign.clusterId), `the refusal names both cluster ids: ${why}`);
    assert.equal(await page.$(`${panel} tr[data-member="x1"]`), null, 'x1 is not listed in our cluster');
    await page.fill('#filter-type', 'refused');
    await page.waitForFunction(`${count('#events tr.refused')} > 0`, null, { timeout: 30_000 });
    const row = (await page.textContent('#events tr.refused')) ?? '';
    assert.ok(row.includes(clusterId) && row.includes(foreign.clusterId), `the refusal names both cluster ids: ${row}`);
    await page.fill('#filter-type', '');
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(ARTIFACTS, 'inspector.png'), fullPage: true });
    await page.locator('#overview').screenshot({ path: join(ARTIFACTS, 'inspector-overview.png') });
    assert.deepEqual((page as Page & { errors: string[] }).errors, [], 'no page errors, no external requests');

    const liveLeaders = await pageLeaders(page);
    assert.deepEqual(liveLeaders.slice(0, 2), [oldLeader, newLeader], `leaders seen live: ${liveLeaders}`);
    await page.close();
    await inspector.kill('SIGTERM');

    // the recording, replayed: the same sequence of leaders (the page's model in Node, and the page)
    const lines = (await readFile(recording, 'utf8')).trim().split('\n');
    const frames = lines.slice(1).map((l) => JSON.parse(l) as Frame);
    assert.deepEqual(modelAt(frames, frames.length).leaders.map((l) => l.node), liveLeaders);

    const replayPort = await freePort();
    const replayer = new CliProcess(['inspect', '--replay', recording, '--listen', `127.0.0.1:${replayPort}`], { env });
    tools.push(replayer);
    await replayer.waitForOutput(/inspector replaying .* on (http:\/\/\S+)/, 90_000);
    const replayPage = await openPage(`http://127.0.0.1:${replayPort}/`);
    assert.deepEqual(await pageLeaders(replayPage), [], 'a replay starts at the beginning');
    const max = await replayPage.getAttribute('#scrubber', 'max');
    await replayPage.fill('#scrubber', max!);
    await replayPage.waitForFunction(unreachable(oldLeader), null, { timeout: 45_000 });
    assert.deepEqual(await pageLeaders(replayPage), liveLeaders, 'replay reproduces the leaders seen live');
    // the last leader seen live (under load a later election may follow the failover)
    assert.deepEqual(await litLeaders(replayPage), [liveLeaders[liveLeaders.length - 1]]);
    // the same election, from the recorded frames
    const replayed = (await replayPage.evaluate('window.conclave.elections()')) as Array<{ cause: string; leader: string | null; previousLeader: string | null }>;
    assert.ok(
      replayed.some((e) => e.leader === newLeader && e.cause === 'election timeout' && e.previousLeader === oldLeader),
      `the replay shows the election after the kill: ${JSON.stringify(replayed)}`,
    );
    await replayPage.waitForFunction(`document.querySelector('${electionRow}') !== null`, null, { timeout: 30_000 });
    await replayPage.screenshot({ path: join(ARTIFACTS, 'inspector-replay.png') });
    await replayPage.close();
  });
});
