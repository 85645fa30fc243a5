// Join handshakes as a sequence: lifelines for the nodes involved, the messages between them and what
// each end decided, in time order — drawn from the two ends' own charts: the leader's membership
// actor (`membership:add:<node>`) and the node's join actor (`join:<leader>`).
import { el as svgEl } from './charts.js';
import { time } from './dom.js';

const MAX_ROWS = 60;
const ROW_H = 26;
const COL_W = 190;
const TOP = 34;

/** What one step of a handshake chart means: a message between the two ends, or a note at one. */
const LEADER_SIDE = {
  offering: (l, n) => ({ from: l, to: n, label: 'join.offer (cluster id, leader, protocol)' }),
  answered: (l) => ({ at: l, label: 'answer received; join rule checked at the leader' }),
  refused: (l) => ({ at: l, label: 'refused', bad: true }),
  addingLearner: (l, n) => ({ at: l, label: `adds ${n} as learner (config entry through raft)` }),
  catchingUp: (l, n) => ({ from: l, to: n, label: 'snapshot + log entries (catch-up)' }),
  promoting: (l, n) => ({ at: l, label: `promotes ${n} to voter (config entry)` }),
  done: (l, n) => ({ at: l, label: `${n}: done` }),
  failed: (l) => ({ at: l, label: 'failed', bad: true }),
  notifying: (l, n) => ({ from: l, to: n, label: 'member.removed' }),
};
const NODE_SIDE = {
  checking: (n) => ({ at: n, label: 'checks the offer: the join rule on both cluster ids' }),
  recordingContact: (n) => ({ at: n, label: 'records the contact durably' }),
  enteringJoin: (n) => ({ at: n, label: 'enters joining' }),
  accepted: (n, l) => ({ from: n, to: l, label: 'join.accept' }),
  refused: (n, l) => ({ from: n, to: l, label: 'join.refuse', bad: true }),
  failed: (n) => ({ at: n, label: 'failed', bad: true }),
};

/** The handshake steps (and join refusals) of the model as sequence rows, oldest first (the last MAX_ROWS). */
export function sequenceRows(handshakes, refusals = []) {
  const rows = [];
  for (const e of refusals) {
    if (e.reason === 'join-offer') rows.push({ t: e.t, at: e.node, label: `refuses ${e.from}: join rule (${e.localClusterId ?? 'no cluster'} ≠ ${e.remoteClusterId ?? 'no cluster'})`, bad: true });
  }
  for (const e of handshakes) {
    // a join actor starts when the offer arrives; its first steps run before it is ever published
    const state = e.k === 'actor' ? 'checking' : (e.states?.[0] ?? '').split('.').pop();
    const parts = String(e.a).split(':');
    let row = null;
    if (parts[0] === 'membership' && parts.length >= 3) row = LEADER_SIDE[state]?.(e.node, parts.slice(2).join(':'));
    else if (parts[0] === 'join' && parts.length >= 2 && (e.k === 'actor' || state !== 'checking')) row = NODE_SIDE[state]?.(e.node, parts.slice(1).join(':'));
    if (row) rows.push({ t: e.t, ...row });
  }
  return rows.sort((a, b) => a.t - b.t).slice(-MAX_ROWS);
}

/** rows of the raft messages view are merged over this much time (same sender, receiver, type and term) */
const MESSAGE_BUCKET_MS = 100;

/**
 * Raft messages received within [from, to] as sequence rows, oldest first. Each received batch came
 * merged (same sender, receiver, type and term, with a count); rows merge them again per 100 ms, and
 * when more remain than fit, the view keeps the last MAX_ROWS and says how many it left out.
 * `nameOf` turns the raft core's node ids into names (unknown ids are shortened).
 */
export function messageRows(messages, nameOf, from, to) {
  const merged = new Map();
  let total = 0;
  for (const m of messages) {
    if (m.t < from || m.t > to) continue;
    total += m.n;
    const bucket = Math.floor(m.t / MESSAGE_BUCKET_MS);
    const sender = nameOf(m.from);
    const receiver = m.node ?? nameOf(m.to);
    const key = `${bucket}|${sender}|${receiver}|${m.type}|${m.term}`;
    const row = merged.get(key);
    if (row) row.n += m.n;
    else merged.set(key, { t: m.t, from: sender, to: receiver, type: m.type, term: m.term, n: m.n });
  }
  const all = [...merged.values()].sort((a, b) => a.t - b.t);
  const rows = all.slice(-MAX_ROWS).map((r) => ({ t: r.t, from: r.from, to: r.to, label: `${r.type}${r.n > 1 ? ` ×${r.n}` : ''}${r.term !== null ? ` · term ${r.term}` : ''}`, type: r.type, n: r.n }));
  return { rows, total, omitted: all.length - rows.length };
}

export function renderSequence(container, rows, what = 'join handshakes', empty = 'no join handshake seen yet (add a node: conclave cluster add NAME --via MEMBER)') {
  if (!rows.length) {
    container.textContent = empty;
    return;
  }
  const nodes = [...new Set(rows.flatMap((r) => [r.from, r.to, r.at].filter(Boolean)))].sort();
  const x = (n) => 110 + nodes.indexOf(n) * COL_W + COL_W / 2;
  // room on the right for the notes of the last lifeline
  const width = 110 + nodes.length * COL_W + 220;
  const height = TOP + rows.length * ROW_H + 10;
  const svg = svgEl('svg', { width, height, class: 'sequence', role: 'img', 'aria-label': `${what}: ${rows.length} rows between ${nodes.join(', ')}` });
  const defs = svgEl('defs');
  const marker = svgEl('marker', { id: 'seq-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse' });
  marker.append(svgEl('path', { d: 'M0,0 L10,5 L0,10 z' }));
  defs.append(marker);
  svg.append(defs);
  for (const n of nodes) {
    svg.append(svgEl('text', { x: x(n), y: 18, class: 'lifeline-name' }, n), svgEl('line', { x1: x(n), x2: x(n), y1: 24, y2: height, class: 'lifeline' }));
  }
  rows.forEach((r, i) => {
    const y = TOP + i * ROW_H + 14;
    const g = svgEl('g', { class: `seq-row ${r.at ? 'note' : 'message'}${r.bad ? ' bad' : ''}`, 'data-from': r.from ?? r.at, 'data-to': r.to ?? '', 'data-label': r.label });
    g.append(svgEl('text', { x: 4, y: y + 4, class: 'seq-time' }, time(r.t)));
    if (r.at) {
      g.append(svgEl('text', { x: x(r.at) + 8, y: y + 4, class: 'seq-note' }, r.label));
      g.append(svgEl('circle', { cx: x(r.at), cy: y, r: 4 }));
    } else {
      const x1 = x(r.from);
      const x2 = x(r.to);
      g.append(svgEl('line', { x1, x2: x2 + (x2 > x1 ? -2 : 2), y1: y, y2: y, 'marker-end': 'url(#seq-arrow)' }));
      g.append(svgEl('text', { x: (x1 + x2) / 2, y: y - 4, class: 'seq-label' }, r.label));
    }
    svg.append(g);
  });
  container.replaceChildren(svg);
}
