// The demo in real headless Chromium: the page of `conclave demo` shows the tour's join handshakes as
// a sequence (offer, the node's checks, accept, promotion; the intruder refused), and its hands-on
// controls stop the leader — a new leader is shown within the page, the stopped node unreachable,
// the election on the timeline with its cause, its raft messages (TimeoutNow, vote, granted) — then
// restart it and write a key (an append round: entries carried, each follower accepting), add a node
// (a new member in the overview; its state as snapshot chunks) and remove it (gone from the overview),
// and cut the leader off (unreachable and cut off in the overview, a new leader; reconnected, what was
// lost each way is said). Outside the demo there are no controls.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startInspectorServer } from '../../runtime/inspect/server.ts';
import { chromiumSkipReason } from '../helpers/chromium.ts';
import { demoInChromium } from '../helpers/demo.ts';
import { fakeControls } from '../helpers/fakeControls.ts';

describe('hands on, in the demo', { skip: chromiumSkipReason() }, () => {
  const demo = demoInChromium();

  it('stopping the leader from the page: a new leader shown within the page; restart and write too', async () => {
    const { page, errors } = await demo.open();
    const lit = `[...document.querySelectorAll('.node.leader:not(.unreachable)')].map((e) => e.getAttribute('data-node')).filter((n) => n !== 'intruder')`;
    await page.waitForFunction(`${lit}.length === 1 && document.querySelector('#controls button[data-control="stop"]') !== null`, null, { timeout: 60_000 });
    const [leader] = (await page.evaluate(lit)) as string[];

    // the join handshakes of the tour, as a sequence: offer → the node's checks → accept, and the intruder's refusal
    const seq = `document.querySelectorAll('#sequence-view g.seq-row')`;
    await page.waitForFunction(`[...${seq}].some((g) => g.getAttribute('data-label') === 'join.accept' && g.getAttribute('data-from') === 'ctrl3')`, null, { timeout: 30_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nthe page's sequence rows: ${JSON.stringify(await page.evaluate('window.conclave.sequence()'))}`);
    });
    const rows = (await page.evaluate('window.conclave.sequence()')) as Array<{ from?: string; to?: string; at?: string; label: string }>;
    const index = (match: (r: (typeof rows)[number]) => boolean, what: string) => {
      const i = rows.findIndex(match);
      assert.ok(i >= 0, `${what} in ${JSON.stringify(rows)}`);
      return i;
    };
    for (const node of ['ctrl2', 'ctrl3']) {
      const offer = index((r) => r.label.startsWith('join.offer') && r.to === node, `the offer to ${node}`);
      const check = index((r) => r.at === node && r.label.startsWith('checks the offer'), `${node} checks it`);
      const accept = index((r) => r.label === 'join.accept' && r.from === node, `${node} accepts`);
      const promote = index((r) => r.label === `promotes ${node} to voter (config entry)`, `${node} promoted`);
      assert.ok(offer < check && check < accept && accept < promote, `in order: offer, check, accept, promote (${node}), in ${JSON.stringify(rows)}`);
    }
    // the intruder answers the offer with its own cluster id; the leader's join rule refuses it
    const offered = index((r) => r.label.startsWith('join.offer') && r.to === 'intruder', 'the offer to the intruder');
    const refused = index((r) => r.at === 'ctrl1' && r.label.startsWith('refuses intruder: join rule'), 'the leader refuses');
    assert.ok(offered < refused);
    await page.locator('#sequence').screenshot({ path: 'test/artifacts/inspector-sequence.png' });

    await page.click(`#controls button[data-control="stop"][data-node="${leader}"]`);
    await page.waitForFunction(
      `${lit}.length === 1 && ${lit}[0] !== ${JSON.stringify(leader)} && document.querySelector('.node[data-node="${leader}"]')?.classList.contains('unreachable')`,
      null,
      { timeout: 60_000 },
    );
    const [next] = (await page.evaluate(lit)) as string[];
    assert.match((await page.textContent('#control-result')) ?? '', new RegExp(`${leader} stopped`));
    // a graceful stop hands leadership over: the timeline says so, from the nodes' raft charts
    await page.waitForFunction(`window.conclave.elections().some((e) => e.leader === ${JSON.stringify(next)} && e.previousLeader === ${JSON.stringify(leader)})`, null, { timeout: 30_000 });
    const election = ((await page.evaluate('window.conclave.elections()')) as Array<{ start: number; cause: string; leader: string; previousLeader: string; durationMs: number }>).find((e) => e.leader === next && e.previousLeader === leader);
    process.stdout.write(`# controls: stopped ${leader}; ${next} leads; election ${JSON.stringify(election)}\n`);
    assert.equal(election?.cause, 'transfer', 'a leader that stops hands leadership over');

    // the raft messages of that election, as the page draws them: the stopping leader's TimeoutNow, the
    // new leader's vote request and a granted reply
    await page.click(`#election-list tr.election-row[data-start="${election!.start}"] button.show-messages`);
    const row = (from: string, to: string | null, label: string) =>
      `[...document.querySelectorAll('#sequence-view g.seq-row')].some((g) => g.getAttribute('data-from') === ${JSON.stringify(from)}${to ? ` && g.getAttribute('data-to') === ${JSON.stringify(to)}` : ''} && ${label}.test(g.getAttribute('data-label')))`;
    const messageRows = async () => JSON.stringify(await page.evaluate('window.conclave.messages()'));
    await page
      .waitForFunction(`${row(leader!, next!, '/^timeout-now /')} && ${row(next!, null, '/^vote /')} && [...document.querySelectorAll('#sequence-view g.seq-row')].some((g) => g.getAttribute('data-to') === ${JSON.stringify(next)} && /^vote-response( ×\\d+)? ✓ granted/.test(g.getAttribute('data-label')))`, null, { timeout: 30_000 })
      .catch(async (err: Error) => {
        throw new Error(`${err.message}\nthe page's message rows: ${await messageRows()}`);
      });

    await page.click(`#controls button[data-control="restart"][data-node="${leader}"]`);
    await page.waitForFunction(`!document.querySelector('.node[data-node="${leader}"]')?.classList.contains('unreachable') && document.querySelector('#controls button[data-control="stop"][data-node="${leader}"]') !== null`, null, { timeout: 60_000 });

    await page.fill('#write-form input[name="key"]', 'color');
    await page.fill('#write-form input[name="value"]', 'green');
    const [writer] = (await page.evaluate(lit)) as string[];
    // rows merge per 100 ms: a row holding this write's append starts at most that much before it
    const writtenAt = Date.now() - 100;
    await page.click('#write-form button[type="submit"]');
    await page.waitForFunction(`/color = "green" written/.test(document.querySelector('#control-result').textContent)`, null, { timeout: 30_000 });
    // that write as an append round, live (heartbeats hidden): the leader's append carrying entries, each follower accepting it
    await page.click('#seq-live');
    await page.selectOption('#seq-window', '30000');
    await page.check('#seq-no-heartbeats');
    const shown = `window.conclave.messages().rows.filter((r) => r.t >= ${writtenAt})`;
    const appendRound = (follower: string) =>
      `${shown}.some((r) => r.from === ${JSON.stringify(writer)} && r.to === ${JSON.stringify(follower)} && r.type === 'append' && r.entries > 0) && ${shown}.some((r) => r.from === ${JSON.stringify(follower)} && r.to === ${JSON.stringify(writer)} && r.type === 'append-response' && r.ok === true)`;
    const followers = ['ctrl1', 'ctrl2', 'ctrl3'].filter((n) => n !== writer);
    await page.waitForFunction(followers.map(appendRound).join(' && '), null, { timeout: 30_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nthe page's message rows: ${await messageRows()}`);
    });
    // drawn as such (the panel is redrawn a moment after the model has them): an append with its entries, an accepted reply
    await page.waitForFunction(`${row(writer!, followers[0]!, '/^append( ×\\d+)? · [1-9]\\d* entr/')} && ${row(followers[0]!, writer!, '/^append-response( ×\\d+)? ✓ accepted/')}`, null, { timeout: 30_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nthe page's message rows: ${await messageRows()}`);
    });
    assert.ok(!((await page.evaluate('window.conclave.messages()')) as { rows: Array<{ type: string }> }).rows.some((r) => r.type === 'heartbeat'), 'heartbeats hidden');
    await page.locator('#sequence').screenshot({ path: 'test/artifacts/inspector-append-round.png' });
    await page.click('#seq-handshakes');

    // add a node from the page: a blank ctrl4 is started, offered, accepts, and becomes a voter
    await page.fill('#add-form input[name="node"]', 'ctrl4');
    await page.click('#add-form button[type="submit"]');
    await page.waitForFunction(`/ctrl4 added as a voter/.test(document.querySelector('#control-result').textContent)`, null, { timeout: 60_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nthe page says: ${await page.textContent('#control-result')}`);
    });
    const members = `[...document.querySelectorAll('#clusters section.cluster tr[data-member]')].map((r) => r.getAttribute('data-member'))`;
    await page.waitForFunction(`${members}.includes('ctrl4')`, null, { timeout: 30_000 });
    await page.waitForFunction(`[...${seq}].some((g) => g.getAttribute('data-label') === 'join.accept' && g.getAttribute('data-from') === 'ctrl4')`, null, { timeout: 30_000 });
    // its state arrived as snapshot chunks from the leader (as its bootstrap chart counted them), then the snapshot itself
    const [adder] = (await page.evaluate(lit)) as string[];
    await page.click('#seq-messages');
    await page.waitForFunction(`${row(adder!, 'ctrl4', '/^snapshot-chunk( ×\\d+)? · [\\d.]+ (B|kB|MB)$/')} && ${row(adder!, 'ctrl4', '/^snapshot · term /')}`, null, { timeout: 30_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nthe page's message rows: ${await messageRows()}`);
    });
    await page.click('#seq-handshakes');
    // and remove it again: the overview is back to three members
    await page.click('#controls button[data-control="remove"][data-node="ctrl4"]');
    await page.waitForFunction(`/ctrl4 removed from the cluster/.test(document.querySelector('#control-result').textContent)`, null, { timeout: 60_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nthe page says: ${await page.textContent('#control-result')}`);
    });
    await page.waitForFunction(`!${members}.includes('ctrl4')`, null, { timeout: 30_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nmembers shown: ${JSON.stringify(await page.evaluate(members))}`);
    });

    // cut the leader off from the others: they elect a leader of their own; reconnected, it follows
    const [isolated] = (await page.evaluate(lit)) as string[];
    await page.click(`#controls button[data-control="cut-off"][data-node="${isolated}"]`);
    await page.waitForFunction(`/${isolated} is cut off/.test(document.querySelector('#control-result').textContent)`, null, { timeout: 30_000 });
    // the overview: the inspector's status requests are lost too, so the member is unreachable, and cut off
    await page.waitForFunction(`/✕ no \\(⌁ cut off\\)/.test(document.querySelector('#clusters tr[data-member="${isolated}"]')?.textContent ?? '')`, null, { timeout: 30_000 });
    await page.waitForFunction(`${lit}.length === 1 && ${lit}[0] !== ${JSON.stringify(isolated)}`, null, { timeout: 60_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nleaders lit: ${JSON.stringify(await page.evaluate(lit))}`);
    });
    await page.click(`#controls button[data-control="reconnect"][data-node="${isolated}"]`);
    await page.waitForFunction(`/${isolated} is connected to the others again/.test(document.querySelector('#control-result').textContent)`, null, { timeout: 30_000 });
    // what the partition cost, counted both ways: its heartbeats and pre-votes, the others' votes and the status requests to it
    const healed = /after [\d.]+ s cut off: (\d+) messages? it sent and (\d+) sent to it were lost/.exec((await page.textContent('#control-result')) ?? '');
    assert.ok(healed && Number(healed[1]) > 0 && Number(healed[2]) > 0, `lost both ways: ${await page.textContent('#control-result')}`);
    process.stdout.write(`# controls: ${isolated} cut off then reconnected: ${healed[0]}\n`);
    // back in the cluster: reachable, a follower of the one leader (check-quorum made it step down)
    await page.waitForFunction(
      `${lit}.length === 1 && !document.querySelector('.node[data-node="${isolated}"]')?.classList.contains('unreachable') && !document.querySelector('.node[data-node="${isolated}"]')?.classList.contains('leader')`,
      null,
      { timeout: 60_000 },
    );
    await page.locator('#controls').screenshot({ path: 'test/artifacts/inspector-controls.png' });
    assert.deepEqual(errors, [], 'no page errors, no external requests');
    await page.close();
  });

  it('an inspector without controls refuses actions (only the demo has them)', async () => {
    const server = await startInspectorServer({ listen: '127.0.0.1:0', recording: { header: { format: 'conclave-inspect-recording', version: 1, prefix: 'p', startedAt: 0 }, frames: [] } });
    try {
      assert.deepEqual(await (await fetch(new URL('/api/controls', server.url))).json(), { enabled: false, nodes: [] });
      const res = await fetch(new URL('/api/control', server.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"action":"stop","node":"n1"}' });
      assert.equal(res.status, 404);
    } finally {
      await server.close();
    }
  });

  it('controls answer the page only: another origin, a body that is not JSON or not an action are refused', async () => {
    const done: string[] = [];
    const controls = fakeControls(done);
    const server = await startInspectorServer({ listen: '127.0.0.1:0', recording: { header: { format: 'conclave-inspect-recording', version: 1, prefix: 'p', startedAt: 0 }, frames: [] }, controls });
    const post = (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => fetch(new URL('/api/control', server.url), { method: 'POST', headers, body });
    try {
      assert.equal((await post('{"action":"stop","node":"n1"}', { 'content-type': 'application/json', origin: 'http://evil.example' })).status, 403);
      assert.equal((await post('action=stop&node=n1', { 'content-type': 'application/x-www-form-urlencoded' })).status, 415);
      assert.equal((await post('{"action":"format-disk"}')).status, 400);
      assert.equal((await post(JSON.stringify({ action: 'put', key: 'k', value: 'x'.repeat(5000) }))).status, 413);
      assert.deepEqual(done, [], 'nothing was done');
      const ok = await post('{"action":"stop","node":"n1"}');
      assert.deepEqual(await ok.json(), { ok: true, message: 'done: stop n1' });
      assert.deepEqual(await (await post('{"action":"pause","node":"n1"}')).json(), { ok: true, message: 'done: pause n1' });
      assert.deepEqual(done, ['stop n1', 'pause n1']);
    } finally {
      await server.close();
    }
  });
});
