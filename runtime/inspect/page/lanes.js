// Elections on a timeline: one lane per node coloured by raft role over time (with a letter, and a
// legend: colour is not the only signal), term boundaries as dashed lines, each election as a band
// with its cause and duration; and the same elections as a table.
import { el as svgEl } from './charts.js';
import { h, roleLabel, time } from './dom.js';

const LANE_H = 22;
const LABEL_W = 70;
const TOP = 34;
const LETTER = { leader: 'L', follower: 'F', candidate: 'C', preCandidate: 'P', learner: 'l', unreachable: '✕' };
export const LANE_ROLES = Object.keys(LETTER);


export function renderLegend(container) {
  container.replaceChildren(
    ...LANE_ROLES.map((role) => h('span', { class: 'legend-item' }, h('span', { class: `swatch lane-${role}` }, LETTER[role]), ` ${roleLabel(role)}`)),
    h('span', { class: 'legend-item' }, h('span', { class: 'swatch term-line' }), ' term boundary'),
    h('span', { class: 'legend-item' }, h('span', { class: 'swatch election-band' }), ' election'),
  );
}

/** Draw the lanes of `el` (model.elections) for the window [from, to] (epoch ms). */
export function renderLanes(container, el, from, to) {
  const nodes = [...el.lanes.keys()].sort();
  const width = Math.max(400, container.clientWidth || 900);
  const height = TOP + nodes.length * LANE_H + 18;
  const span = Math.max(1, to - from);
  const x = (t) => LABEL_W + ((Math.max(from, Math.min(to, t)) - from) / span) * (width - LABEL_W - 8);
  const root = svgEl('svg', { width, height, class: 'lanes' });
  const terms = new Map();
  nodes.forEach((node, i) => {
    const y = TOP + i * LANE_H;
    root.append(svgText(4, y + 15, node, 'lane-name'));
    for (const seg of el.lanes.get(node)) {
      const end = seg.to ?? to;
      if (end < from || seg.from > to) continue;
      const x0 = x(seg.from);
      const x1 = Math.max(x0 + 1, x(end));
      const g = svgEl('g', { class: `seg lane-${seg.role}`, 'data-node': node, 'data-role': seg.role });
      g.append(svgEl('rect', { x: x0, y: y + 2, width: x1 - x0, height: LANE_H - 4 }));
      if (x1 - x0 > 14) g.append(svgEl('text', { x: x0 + 4, y: y + 15 }, LETTER[seg.role] ?? '?'));
      g.append(svgEl('title', {}, `${node}: ${roleLabel(seg.role)}${seg.term !== null ? ` in term ${seg.term}` : ''} from ${time(seg.from)}${seg.to ? ` to ${time(seg.to)}` : ''}${seg.cause ? ` (${seg.cause})` : ''}`));
      root.append(g);
      if (seg.term !== null && (!terms.has(seg.term) || terms.get(seg.term) > seg.from)) terms.set(seg.term, seg.from);
    }
  });
  let lastLabel = -Infinity;
  for (const [term, t] of [...terms].sort((a, b) => a[1] - b[1])) {
    if (t < from || t > to) continue;
    const tx = x(t);
    root.append(svgEl('line', { class: 'term-line', x1: tx, x2: tx, y1: 14, y2: height - 16 }));
    // labels of terms that begin close together would overlap: the line stays, the label waits
    if (tx - lastLabel < 48) continue;
    lastLabel = tx;
    root.append(svgText(tx + 2, height - 4, `term ${term}`, 'term-label'));
  }
  for (const e of el.elections) {
    const end = e.end ?? to;
    if (end < from || e.start > to) continue;
    const x0 = x(e.start);
    const x1 = Math.max(x0 + 3, x(end));
    const g = svgEl('g', { class: `election${e.end ? '' : ' open'}` });
    g.append(svgEl('rect', { x: x0, y: 2, width: x1 - x0, height: 12 }));
    g.append(svgText(x0, 28, `${e.cause}${e.durationMs !== null ? ` · ${e.durationMs} ms` : ' · …'}`, 'election-label'));
    g.append(svgEl('title', {}, `election (${e.cause}) started by ${e.startedBy} at ${time(e.start)}${e.leader ? `; ${e.leader} leads term ${e.term ?? '?'} after ${e.durationMs} ms` : '; no leader yet'}`));
    root.append(g);
  }
  container.replaceChildren(root);
}

const svgText = (x, y, text, cls) => svgEl('text', { x, y, class: cls }, text);

/** `elections`: newest first, as namedElections gives them */
export function renderElectionList(tbody, elections) {
  const shown = elections.slice(0, 50);
  // redrawn only when a row changed: a row replaced on every frame is a button nobody can click
  const key = JSON.stringify(shown);
  if (tbody.dataset.key === key) return;
  tbody.dataset.key = key;
  tbody.replaceChildren(
    ...shown
      .map((e) =>
        h(
          'tr',
          { class: `election-row${e.end ? '' : ' open'}`, 'data-cause': e.cause, 'data-leader': e.leader ?? '', 'data-start': e.start },
          h('td', { class: 'mono' }, time(e.start)),
          h('td', { class: 'cause' }, e.cause),
          h('td', {}, e.startedBy),
          h('td', {}, e.previousLeader ?? '–'),
          h('td', {}, e.leader ?? 'none yet'),
          h('td', {}, String(e.term ?? '–')),
          h('td', { class: 'mono' }, e.durationMs !== null ? `${e.durationMs} ms` : '…'),
          h('td', {}, h('button', { type: 'button', class: 'show-messages', 'data-start': e.start, 'data-end': e.end ?? '' }, 'show')),
        ),
      ),
  );
}
