// Pausing a node from the demo's page, in real headless Chromium: the leader paused (as SIGSTOP
// would: its timers stop, its traffic is held) is shown paused on its card and in the overview while
// the others elect a new leader in a higher term; resumed, it hears the new term and follows.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitUntil } from '../helpers/cli.ts';
import { chromiumSkipReason } from '../helpers/chromium.ts';
import { type ClusterView, demoInChromium } from '../helpers/demo.ts';

type NodeView = ClusterView['nodes'][number] & { term?: number; leader?: string | null; reachable?: boolean; paused?: boolean };

describe('hands on, in the demo: pause and resume a node', { skip: chromiumSkipReason() }, () => {
  const demo = demoInChromium();

  it('pausing the leader: the others elect a new one while the page shows it paused; resumed, it follows in the new term', async () => {
    const { url, page, errors } = await demo.open();
    const cluster = async () => ((await (await fetch(new URL('/api/cluster', url))).json()) as { nodes: NodeView[] }).nodes;
    const lit = `[...document.querySelectorAll('.node.leader:not(.unreachable)')].map((e) => e.getAttribute('data-node')).filter((n) => n !== 'intruder')`;
    await page.waitForFunction(`${lit}.length === 1 && document.querySelector('#controls button[data-control="pause"]') !== null`, null, { timeout: 60_000 });
    const [leader] = (await page.evaluate(lit)) as string[];
    const before = (await cluster()).find((n) => n.name === leader)!;
    const oldTerm = before.term!;
    const card = `document.querySelector('.node[data-node="${leader}"]')`;
    const row = `document.querySelector('#clusters tr[data-member="${leader}"]')`;
    const says = (what: string) => `document.querySelector('#control-result').textContent.includes(${JSON.stringify(what)})`;
    const explain = (what: string) => async (err: Error) => {
      const shown = await page.evaluate(`({ result: document.querySelector('#control-result').textContent, card: ${card}?.textContent, row: ${row}?.textContent, lit: ${lit} })`);
      throw new Error(`${err.message}\nwaiting for: ${what}\nthe page shows: ${JSON.stringify(shown)}\n/api/cluster: ${JSON.stringify(await cluster())}`);
    };

    // 1. pause the leader: the card and the overview say paused; the controls offer Resume
    await page.click(`#controls button[data-control="pause"][data-node="${leader}"]`);
    await page.waitForFunction(says(`${leader} is paused`), null, { timeout: 30_000 }).catch(explain('the pause answered'));
    await page
      .waitForFunction(
        `${card}?.classList.contains('paused') && /⏸ paused/.test(${card}.querySelector('.reach').textContent) && /⏸ paused/.test(${row}?.textContent ?? '') && document.querySelector('#controls button[data-control="resume"][data-node="${leader}"]') !== null`,
        null,
        { timeout: 30_000 },
      )
      .catch(explain('the card and the overview show the leader paused'));

    // 2. the others elect a new leader among themselves, in a higher term, while it is paused
    await page.waitForFunction(`${lit}.length === 1 && ${lit}[0] !== ${JSON.stringify(leader)}`, null, { timeout: 60_000 }).catch(explain('a new leader lit'));
    const [next] = (await page.evaluate(lit)) as string[];
    // the page's election: the new leader was elected because the paused one went silent
    await page
      .waitForFunction(`window.conclave.elections().some((e) => e.leader === ${JSON.stringify(next)} && e.previousLeader === ${JSON.stringify(leader)})`, null, { timeout: 30_000 })
      .catch(explain('the election on the timeline'));
    const election = ((await page.evaluate('window.conclave.elections()')) as Array<{ cause: string; leader: string; previousLeader: string; term: number | null }>).find(
      (e) => e.leader === next && e.previousLeader === leader,
    );
    // the inspector's view (its status polls, once a second) catches up with the charts
    let nodes: NodeView[] = [];
    const led = (n: NodeView[]) => n.find((x) => x.name === next && x.role === 'leader');
    await waitUntil(
      async () => {
        nodes = await cluster();
        return (led(nodes)?.term ?? 0) > oldTerm;
      },
      { what: `${next} leads a new term in /api/cluster`, timeoutMs: 30_000, context: () => JSON.stringify(nodes) },
    );
    const pausedView = nodes.find((n) => n.name === leader)!;
    const newTerm = led(nodes)!.term!;
    process.stdout.write(`# pause: paused ${leader} (term ${oldTerm}); ${next} leads in term ${newTerm}; election ${JSON.stringify(election)}\n`);
    assert.equal(election?.cause, 'election timeout', 'the others stopped hearing from the paused leader');
    assert.equal(pausedView.paused, true, '/api/cluster says paused');
    assert.equal(pausedView.reachable, false, 'a paused node answers nothing');
    // the paused node learned nothing: as last heard, it still thinks it leads in the old term
    assert.equal(pausedView.term, oldTerm);

    // 3. resume it: it hears the new term and follows the new leader
    await page.click(`#controls button[data-control="resume"][data-node="${leader}"]`);
    await page.waitForFunction(says(`${leader} resumed after`), null, { timeout: 30_000 }).catch(explain('the resume answered'));
    process.stdout.write(`# resume: ${await page.textContent('#control-result')}\n`);
    await page
      .waitForFunction(
        `!${card}.classList.contains('paused') && !${card}.classList.contains('unreachable') && !${card}.classList.contains('leader') && /follower/.test(${row}?.textContent ?? '') && ${lit}.length === 1`,
        null,
        { timeout: 60_000 },
      )
      .catch(explain('the old leader shown as a follower'));
    nodes = await cluster();
    const resumed = nodes.find((n) => n.name === leader)!;
    const leaderNow = nodes.find((n) => n.role === 'leader' && n.name !== 'intruder')!;
    process.stdout.write(`# after resume: ${JSON.stringify(nodes.filter((n) => n.name !== 'intruder').map((n) => ({ name: n.name, role: n.role, term: n.term, leader: n.leader })))}\n`);
    assert.equal(resumed.role, 'follower');
    assert.equal(resumed.paused, undefined, 'no longer paused');
    assert.ok(resumed.term! >= newTerm, `it is in the new term (${resumed.term} ≥ ${newTerm})`);
    assert.equal(resumed.term, leaderNow.term, "the leader's term");
    assert.equal(resumed.leader, leaderNow.name, 'and follows that leader');
    // its lane: paused (not a step-down), then a follower because it heard the newer term (not by its own timer)
    const laneOf = `window.conclave.model.elections.lanes.get(${JSON.stringify(leader)}) ?? []`;
    await page
      .waitForFunction(`(${laneOf}).at(-1)?.role === 'follower'`, null, { timeout: 30_000 })
      .catch(explain(`${leader}'s lane ends as a follower`));
    const lane = (await page.evaluate(`(${laneOf}).map(({ role, cause, term }) => ({ role, cause, term }))`)) as Array<{ role: string; cause: string | null; term: number | null }>;
    process.stdout.write(`# ${leader}'s lane: ${JSON.stringify(lane)}\n`);
    assert.ok(lane.some((s) => s.role === 'unreachable' && s.cause === 'paused'), 'the lane says paused');
    assert.deepEqual(lane.at(-1), { role: 'follower', cause: 'stepped down: newer term seen', term: resumed.term });

    // 4. a paused node can be stopped: it is resumed first (as SIGCONT follows SIGTERM), then stops gracefully
    await page.click(`#controls button[data-control="pause"][data-node="${leader}"]`);
    await page.waitForFunction(says(`${leader} is paused`), null, { timeout: 30_000 }).catch(explain('the second pause answered'));
    await page.click(`#controls button[data-control="stop"][data-node="${leader}"]`);
    await page.waitForFunction(says(`${leader} stopped`), null, { timeout: 60_000 }).catch(explain('the paused node stopped'));
    assert.match((await page.textContent('#control-result')) ?? '', /it was resumed first/);
    assert.deepEqual(errors, [], 'no page errors, no external requests');
    await page.close();
  });
});
