// The cluster version in the overview (issue #15), from status answers as the inspector polls them
// (the page's own model, in Node): the committed version, whether peer authentication is on, the
// reporting node's note, what each member speaks and whether its key is committed — and what is
// shown when a node of release 0.1.0, which reports none of it, answers or leads. Then the panel as
// real headless Chromium draws it for a mixed-version window (a recording of one, replayed).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { type Frame, RECORDING_FORMAT, RECORDING_VERSION } from '../../runtime/inspect/inspector.ts';
import { applyFrame, clusterGroups, createModel } from '../../runtime/inspect/page/model.js';
import { type InspectorServer, startInspectorServer } from '../../runtime/inspect/server.ts';
import { ROOT } from '../helpers/cli.ts';
import { chromiumSkipReason, launchChromium, openWatchedPage } from '../helpers/chromium.ts';

const C = '0199cccc-0000-7000-8000-000000000003';
const NEW = { min: 1, max: 2 };
const OLD = { min: 1, max: 1 };
const AUTH_ON_NOTE = 'every member key is committed: peer messages are authenticated';
const MIXED_NOTE = 'mixed versions: peer messages are not authenticated until n3 runs a release that speaks 2 (security is that of the oldest member)';

type Member = { name: string; speaks?: { min: number; max: number }; keyCommitted?: boolean };
const members = (...list: Member[]) => list.map((m, i) => ({ nodeId: `id-${m.name}`, voter: true, leader: i === 0, reachable: true, matchIndex: 7, ...m }));
const status = (name: string, extra: Record<string, unknown> = {}) => ({ name, nodeId: `id-${name}`, clusterId: C, reachable: true, phase: 'member', role: 'follower', term: 3, commitIndex: 7, appliedIndex: 7, leader: 'n1', members: [], checkedAt: 1, ...extra });
const versionView = (version: number, authentication: 'on' | 'off', note: string) => ({ version, speaks: NEW, authentication, note });

function groupOf(nodes: unknown[]) {
  const model = createModel();
  applyFrame(model, { kind: 'cluster', t: 1000, nodes });
  const groups = clusterGroups(model);
  assert.equal(groups.length, 1);
  return groups[0]!;
}
const shownMembers = (g: ReturnType<typeof groupOf>) => g.members.map((m) => ({ name: m.name, speaks: m.speaks, keyCommitted: m.keyCommitted }));

describe('the cluster version in the overview', () => {
  it('a cluster made by this build: version 2, authentication on, every member speaks 1..2 with its key committed', () => {
    const listed = members({ name: 'n1', speaks: NEW, keyCommitted: true }, { name: 'n2', speaks: NEW, keyCommitted: true }, { name: 'n3', speaks: NEW, keyCommitted: true });
    const cv = versionView(2, 'on', AUTH_ON_NOTE);
    const g = groupOf([status('n1', { role: 'leader', members: listed, clusterVersion: cv }), status('n2', { members: listed, clusterVersion: cv }), status('n3', { members: listed, clusterVersion: cv })]);
    assert.deepEqual(g.clusterVersion, { version: 2, reported: true, authentication: 'on', note: AUTH_ON_NOTE, from: 'n1', heldBackBy: [], mixed: false });
    assert.deepEqual(shownMembers(g), ['n1', 'n2', 'n3'].map((name) => ({ name, speaks: NEW, keyCommitted: true })));
  });

  it('a mixed-version window: authentication off, the member of release 0.1.0 holds it back, in the node’s own words', () => {
    const listed = members({ name: 'n1', speaks: NEW, keyCommitted: false }, { name: 'n2', speaks: NEW, keyCommitted: false }, { name: 'n3', speaks: OLD, keyCommitted: false });
    const g = groupOf([
      status('n1', { role: 'leader', members: listed, clusterVersion: versionView(1, 'off', MIXED_NOTE) }),
      status('n2', { members: listed, clusterVersion: versionView(1, 'off', MIXED_NOTE) }),
      // n3 runs release 0.1.0: its status says nothing of versions or keys
      status('n3', { members: listed.map(({ speaks: _s, keyCommitted: _k, ...m }) => m) }),
    ]);
    assert.deepEqual(g.clusterVersion, { version: 1, reported: true, authentication: 'off', note: MIXED_NOTE, from: 'n1', heldBackBy: ['n3'], mixed: true });
    assert.deepEqual(shownMembers(g), [
      { name: 'n1', speaks: NEW, keyCommitted: false },
      { name: 'n2', speaks: NEW, keyCommitted: false },
      { name: 'n3', speaks: OLD, keyCommitted: false },
    ]);
  });

  it('a leader of release 0.1.0 reports nothing: the version and the members’ keys from a member of this build, its own versions as 1', () => {
    const plain = members({ name: 'n1' }, { name: 'n2' }, { name: 'n3' });
    // n2 has not heard n1 say what it speaks yet: its listing has no speaks for n1
    const fromN2 = members({ name: 'n1', keyCommitted: false }, { name: 'n2', speaks: NEW, keyCommitted: false }, { name: 'n3', speaks: NEW, keyCommitted: false });
    const g = groupOf([
      status('n1', { role: 'leader', members: plain }),
      status('n2', { members: fromN2, clusterVersion: versionView(1, 'off', MIXED_NOTE.replace('n3', 'n1')) }),
      status('n3', { members: fromN2, clusterVersion: versionView(1, 'off', MIXED_NOTE.replace('n3', 'n1')), commitIndex: 6 }),
    ]);
    assert.equal(g.leader, 'n1');
    assert.deepEqual(g.clusterVersion, { version: 1, reported: true, authentication: 'off', note: MIXED_NOTE.replace('n3', 'n1'), from: 'n2', heldBackBy: ['n1'], mixed: true });
    assert.deepEqual(shownMembers(g), [
      { name: 'n1', speaks: OLD, keyCommitted: false },
      { name: 'n2', speaks: NEW, keyCommitted: false },
      { name: 'n3', speaks: NEW, keyCommitted: false },
    ]);
  });

  it('a cluster of release 0.1.0 only (statuses without the new fields): version 1, not reported, authentication off; what a member not answering speaks is not known (null)', () => {
    // n3 answered once and stopped: the inspector keeps its last status, marked unreachable
    const plain = members({ name: 'n1' }, { name: 'n2' }, { name: 'n3' });
    const g = groupOf([status('n1', { role: 'leader', members: plain }), status('n2'), { ...status('n3'), reachable: false, error: 'no responders: the node is not running' }]);
    assert.equal(g.clusterVersion?.version, 1);
    assert.equal(g.clusterVersion?.reported, false);
    assert.equal(g.clusterVersion?.authentication, 'off');
    assert.equal(g.clusterVersion?.mixed, false);
    assert.deepEqual(shownMembers(g), [
      { name: 'n1', speaks: OLD, keyCommitted: null },
      { name: 'n2', speaks: OLD, keyCommitted: null },
      { name: 'n3', speaks: null, keyCommitted: null },
    ]);
  });

  it('nodes not in a cluster yet, or a cluster none of whose nodes answers: no cluster version shown', () => {
    assert.equal(groupOf([{ name: 'b1', nodeId: 'id-b1', clusterId: null, reachable: true, phase: 'uninitialized', role: 'none', term: 0, members: [], checkedAt: 1 }]).clusterVersion, null);
    const model = createModel();
    applyFrame(model, { kind: 'batch', t: 1000, node: 'n1', dropped: 0, events: [{ k: 'state', t: 1000, a: 'bootstrap:n1', m: 'bootstrap', states: ['bootstrap.member'], status: 'active', ctx: { clusterId: C } }] });
    applyFrame(model, { kind: 'cluster', t: 1000, nodes: [{ name: 'n1', reachable: false, error: 'no responders', checkedAt: 1 }] });
    assert.equal(clusterGroups(model)[0]!.clusterVersion, null);
  });
});

describe('the cluster version in the page', { skip: chromiumSkipReason() }, () => {
  let browser: Browser | undefined;
  const servers: InspectorServer[] = [];
  after(async () => {
    await browser?.close();
    for (const server of servers) await server.close();
  });

  /** the page of a replayed recording of `nodes`' statuses, moved to its end */
  async function pageShowing(nodes: unknown[]) {
    const frames = [{ kind: 'cluster', t: 1000, nodes }] as Frame[];
    const server = await startInspectorServer({ listen: '127.0.0.1:0', recording: { header: { format: RECORDING_FORMAT, version: RECORDING_VERSION, prefix: 'cv', startedAt: 1000 }, frames } });
    servers.push(server);
    browser ??= await launchChromium();
    const { page, errors } = await openWatchedPage(browser, server.url);
    await page.waitForFunction('window.conclave?.replay !== null && window.conclave?.replay !== undefined');
    await page.evaluate(`window.conclave.replay.seek(${frames.length})`);
    return { page, errors };
  }
  const panel = `#clusters section.cluster[data-cluster="${C}"]`;

  it('a mixed-version window: version 1, authentication off, the note naming the member that holds it back, what each member speaks and its key not committed', async () => {
    const listed = members({ name: 'n1', speaks: NEW, keyCommitted: false }, { name: 'n2', speaks: NEW, keyCommitted: false }, { name: 'n3', speaks: OLD, keyCommitted: false });
    const { page, errors } = await pageShowing([
      status('n1', { role: 'leader', members: listed, clusterVersion: versionView(1, 'off', MIXED_NOTE) }),
      status('n2', { members: listed, clusterVersion: versionView(1, 'off', MIXED_NOTE) }),
      status('n3', { members: listed.map(({ speaks: _s, keyCommitted: _k, ...m }) => m) }),
    ]);
    await page.waitForFunction(`document.querySelector('${panel} .version-note.mixed') !== null`);
    assert.equal((await page.textContent(`${panel} .version`))?.trim(), 'cluster version 1 · ⚠ peer authentication off');
    assert.equal(await page.getAttribute(`${panel} .version`, 'data-authentication'), 'off');
    const note = (await page.textContent(`${panel} .version-note`)) ?? '';
    assert.equal(note, `⚠ ${MIXED_NOTE}`, "the node's own note, which names n3");
    assert.ok(await page.isVisible(`${panel} .version-note`), 'the note is visible');
    const speaks = await page.$$eval(`${panel} tr[data-member] td.speaks`, (tds) => tds.map((td) => `${td.textContent}${td.classList.contains('behind') ? ' (behind)' : ''}`));
    assert.deepEqual(speaks, ['1..2 ⚠ key not committed', '1..2 ⚠ key not committed', '1 ⚠ key not committed (behind)']);
    assert.deepEqual(errors, [], 'no page errors');
    mkdirSync(join(ROOT, 'test', 'artifacts'), { recursive: true });
    // of the panels' container, which stays: scrolling it into view may redraw the panels (an
    // off-screen panel is drawn late), and a panel replaced mid-screenshot is "not attached"
    await page.locator('#clusters').screenshot({ path: join(ROOT, 'test', 'artifacts', 'inspector-mixed-versions.png') });
    await page.close();
  });

  it('a note that does not name the member holding the version back: the page names it; a member not heard from speaks “–”', async () => {
    // n1 names only the member it lists without a key; n2 (named n2-old: a name another one starts with) speaks 1
    const keysNote = 'peer messages are not authenticated yet: n2 without a committed key; the leader commits the keys as it raises the cluster version';
    // n3 has not been heard from: what it speaks is not known
    const listed = members({ name: 'n1', speaks: NEW, keyCommitted: true }, { name: 'n2', speaks: NEW, keyCommitted: false }, { name: 'n2-old', speaks: OLD, keyCommitted: true }, { name: 'n3', keyCommitted: true });
    const { page, errors } = await pageShowing([
      status('n1', { role: 'leader', members: listed, clusterVersion: versionView(1, 'off', keysNote) }),
      status('n2'),
      status('n2-old'),
      { ...status('n3'), reachable: false, error: 'no responders: the node is not running' },
    ]);
    await page.waitForFunction(`document.querySelector('${panel} .version-note.mixed') !== null`);
    assert.equal(await page.textContent(`${panel} .version-note`), `⚠ ${keysNote} — held back by n2-old`);
    const speaks = await page.$$eval(`${panel} tr[data-member] td.speaks`, (tds) => tds.map((td) => td.textContent));
    assert.deepEqual(speaks, ['1..2', '1..2 ⚠ key not committed', '1', '–']);
    assert.deepEqual(errors, [], 'no page errors');
    await page.close();
  });
});
