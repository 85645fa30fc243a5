// The exported diagrams, drawn by the real renderers: every chart of `conclave machines export` is
// rendered with Mermaid 11 (its bundled file, loaded into headless Chromium from node_modules: no
// network) and with Graphviz `dot`, and what they draw is read back from the SVG: every state is a
// box titled with its name (not "invoke …", not the machine's id), listing what it invokes, its
// entry actions and its targetless transitions; every transition's label is on an edge; the
// root's transitions start from one "(any state)" box.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { createRequire } from 'node:module';
import type { Browser, Page } from 'playwright-core';
import { allMachineDefinitions, type MachineDef } from '../../runtime/inspect/machines.ts';
import { ANY_STATE, internalLine, stateNotes, toDot, toMermaid } from '../../runtime/inspect/diagrams.ts';
import { chromiumSkipReason, launchChromium } from '../helpers/chromium.ts';

const MERMAID_FILE = createRequire(import.meta.url).resolve('mermaid/dist/mermaid.min.js');
const defs = allMachineDefinitions();

interface Drawn {
  /** every box: its title and the lines under it */
  boxes: Array<{ title: string; lines: string[] }>;
  /** the text of every labelled edge */
  edgeLabels: string[];
}

const norm = (s: string) => s.replace(/\s+/g, ' ').trim();
const sorted = (xs: string[]) => [...xs].sort();

/** What the diagram must show, from the definition. */
function expected(def: MachineDef): Drawn {
  const boxes = def.states.map((s) => ({ title: s.key, lines: stateNotes(def, s.id) }));
  const rootTargeted = def.transitions.some((t) => t.source === def.id);
  const rootInternal = def.internal.filter((t) => t.source === def.id);
  if (rootTargeted || rootInternal.length) boxes.push({ title: ANY_STATE, lines: rootInternal.map(internalLine) });
  const edgeLabels = def.transitions.flatMap((t) => t.targets.map(() => norm(t.label))).filter(Boolean);
  return { boxes, edgeLabels };
}

function assertDrawn(def: MachineDef, drawn: Drawn, renderer: string): void {
  const want = expected(def);
  assert.deepEqual(sorted(drawn.boxes.map((b) => b.title)), sorted(want.boxes.map((b) => b.title)), `${renderer} ${def.name}: one box per state, titled with its name`);
  for (const box of want.boxes) {
    const got = drawn.boxes.find((b) => b.title === box.title)!;
    assert.deepEqual(got.lines.map(norm), box.lines.map(norm), `${renderer} ${def.name}: what the box "${box.title}" lists`);
  }
  assert.deepEqual(sorted(drawn.edgeLabels.map(norm)), sorted(want.edgeLabels), `${renderer} ${def.name}: every transition's label on an edge`);
}

// The page-side reader, as source text: tsx would wrap a function passed to page.evaluate with
// helpers (`__name`) that do not exist in the page.
const READ_MERMAID = `async (source) => {
  const { svg } = await mermaid.render('d' + Math.random().toString(36).slice(2), source);
  const host = document.createElement('div');
  host.innerHTML = svg;
  document.body.append(host);
  const linesOf = (el) => el.innerHTML.split(/<br\\s*\\/?>/).map((l) => l.replace(/<[^>]*>/g, '').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').trim()).filter(Boolean);
  const boxes = [...host.querySelectorAll('g.node')]
    .map((n) => [...n.querySelectorAll('.nodeLabel')].flatMap(linesOf))
    .filter((lines) => lines.length > 0)
    .map(([title, ...lines]) => ({ title, lines }));
  const edgeLabels = [...host.querySelectorAll('g.edgeLabels .edgeLabel span.edgeLabel')].map((e) => (e.textContent ?? '').trim()).filter(Boolean);
  return { boxes, edgeLabels };
}`;

/** Render with Mermaid in the page; read back the boxes and edge labels. */
async function drawMermaid(page: Page, text: string): Promise<Drawn> {
  return (await page.evaluate(`(${READ_MERMAID})(${JSON.stringify(text)})`)) as Drawn;
}

const unescapeXml = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#45;/g, '-').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

/** Render with Graphviz; read back the boxes (not the start point) and edge labels from the SVG. */
function drawDot(text: string): Drawn {
  const res = spawnSync('dot', ['-Tsvg'], { input: text, encoding: 'utf8' });
  assert.equal(res.status, 0, `dot failed: ${res.stderr}`);
  const groups = [...res.stdout.matchAll(/<g id="(?:node|edge)\d+" class="(node|edge)">([\s\S]*?)<\/g>/g)];
  const texts = (body: string) => [...body.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => unescapeXml(m[1]!));
  const boxes = groups
    .filter((g) => g[1] === 'node')
    .map((g) => texts(g[2]!))
    .filter((lines) => lines.length > 0)
    .map(([title, ...lines]) => ({ title: title!, lines }));
  const edgeLabels = groups.filter((g) => g[1] === 'edge').flatMap((g) => texts(g[2]!));
  return { boxes, edgeLabels };
}

const dotMissing = spawnSync('dot', ['-V']).error !== undefined;
const dotSkip = dotMissing && process.env.CI !== 'true' ? 'Graphviz not installed (apt-get install -y graphviz); skipping the DOT rendering' : false;

describe('exported diagrams, rendered by Mermaid in Chromium', { skip: chromiumSkipReason() }, () => {
  let browser: Browser;
  let page: Page;
  before(async () => {
    browser = await launchChromium();
    page = await browser.newPage();
    const external: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('data:') && r.url() !== 'about:blank') external.push(r.url());
    });
    await page.setContent('<!doctype html><html><body></body></html>');
    await page.addScriptTag({ path: MERMAID_FILE });
    await page.evaluate(`mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' })`);
    assert.deepEqual(external, [], 'mermaid renders offline');
  });
  after(async () => {
    await browser?.close();
  });

  for (const def of defs) {
    it(`${def.name}: every state by name (with invoke, entry, internal transitions) and every transition's label`, async () => {
      assertDrawn(def, await drawMermaid(page, toMermaid(def)), 'mermaid');
    });
  }
});

describe('exported diagrams, rendered by Graphviz dot', { skip: dotSkip }, () => {
  for (const def of defs) {
    it(`${def.name}: every state by name (with invoke, entry, internal transitions) and every transition's label`, () => {
      assertDrawn(def, drawDot(toDot(def)), 'dot');
    });
  }
});
