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

/**
 * Where each step comes in a handshake: the order of rows whose times are equal. Times are whole
 * milliseconds and the two ends publish separately, so the leader's offer and the node's check of it
 * often share a millisecond and reach the page in either order.
 */
const STEP_RANK = {
  offering: 0,
  checking: 1,
  recordingContact: 2,
  enteringJoin: 3,
  accepted: 4,
  answered: 5,
  refused: 5,
  addingLearner: 6,
  catchingUp: 7,
  promoting: 8,
  done: 9,
  failed: 9,
  notifying: 10,
};

/** The handshake steps (and join refusals) of the model as sequence rows, oldest first (the last MAX_ROWS). */
export function sequenceRows(handshakes, refusals = []) {
  const rows = [];
  for (const e of refusals) {
    if (e.reason === 'join-offer') rows.push({ t: e.t, rank: STEP_RANK.refused, at: e.node, label: `refuses ${e.from}: join rule (${e.localClusterId ?? 'no cluster'} ≠ ${e.remoteClusterId ?? 'no cluster'})`, bad: true });
  }
  for (const e of handshakes) {
    // a join actor starts when the offer arrives; its first steps run before it is ever published
    const state = e.k === 'actor' ? 'checking' : (e.states?.[0] ?? '').split('.').pop();
    const parts = String(e.a).split(':');
    let row = null;
    if (parts[0] === 'membership' && parts.length >= 3) row = LEADER_SIDE[state]?.(e.node, parts.slice(2).join(':'));
    else if (parts[0] === 'join' && parts.length >= 2 && (e.k === 'actor' || state !== 'checking')) row = NODE_SIDE[state]?.(e.node, parts.slice(1).join(':'));
    if (row) rows.push({ t: e.t, rank: STEP_RANK[state] ?? 0, ...row });
  }
  return rows
    .sort((a, b) => a.t - b.t || a.rank - b.rank)
    .slice(-MAX_ROWS)
    .map(({ rank: _rank, ...row }) => row);
}

/** rows of the raft messages view are merged over this much time (same sender, receiver, type and term) */
const MESSAGE_BUCKET_MS = 100;

/** A reply's outcome in words (a vote granted or refused, an append accepted or rejected). */
function outcome(type, ok) {
  if (ok === undefined || ok === null) return '';
  if (type === 'append-response') return ok ? ' ✓ accepted' : ' ✗ rejected';
  return ok ? ' ✓ granted' : ' ✗ refused';
}

/** a size in bytes, short */
function size(bytes) {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} kB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function messageLabel(r) {
  const entries = r.entries !== undefined ? ` · ${r.entries} entr${r.entries === 1 ? 'y' : 'ies'}` : '';
  const bytes = r.bytes !== undefined ? ` · ${size(r.bytes)}` : '';
  return `${r.type}${r.n > 1 ? ` ×${r.n}` : ''}${outcome(r.type, r.ok)}${entries}${bytes}${r.term !== null ? ` · term ${r.term}` : ''}`;
}

/**
 * Raft messages received within [from, to] as sequence rows, oldest first. Each received batch came
 * merged (same sender, receiver, type, term and outcome, with a count); rows merge them again per
 * 100 ms, and when more remain than fit, the view keeps the last MAX_ROWS and says how many it left
 * out. `counts`: per sender, receiver and type, how many messages the window holds and how many of
 * them the rows drawn show (most first) — "n1→n2 append ×312 in this window, 20 shown".
 * `nameOf` turns the raft core's node ids into names (unknown ids are shortened); `skip(type)` leaves
 * a type out (heartbeats, to watch appends and votes).
 */
export function messageRows(messages, nameOf, from, to, skip = () => false) {
  const merged = new Map();
  let total = 0;
  for (const m of messages) {
    if (m.t < from || m.t > to || skip(m.type)) continue;
    total += m.n;
    const bucket = Math.floor(m.t / MESSAGE_BUCKET_MS);
    const sender = nameOf(m.from);
    const receiver = m.node ?? nameOf(m.to);
    const key = `${bucket}|${sender}|${receiver}|${m.type}|${m.term}|${m.ok}`;
    const row = merged.get(key);
    if (row) {
      row.n += m.n;
      if (m.entries !== undefined) row.entries = (row.entries ?? 0) + m.entries;
      if (m.bytes !== undefined) row.bytes = (row.bytes ?? 0) + m.bytes;
    } else merged.set(key, { t: m.t, from: sender, to: receiver, type: m.type, term: m.term, n: m.n, entries: m.entries, ok: m.ok, bytes: m.bytes });
  }
  const all = [...merged.values()].sort((a, b) => a.t - b.t);
  const kept = all.slice(-MAX_ROWS);
  const counts = new Map();
  const count = (r, shown) => {
    const key = `${r.from}|${r.to}|${r.type}`;
    const c = counts.get(key) ?? { from: r.from, to: r.to, type: r.type, n: 0, shown: 0 };
    c.n += r.n;
    c.shown += shown;
    counts.set(key, c);
  };
  const firstKept = all.length - kept.length;
  for (let i = 0; i < all.length; i++) count(all[i], i >= firstKept ? all[i].n : 0);
  const rows = kept.map((r) => ({ t: r.t, from: r.from, to: r.to, label: messageLabel(r), type: r.type, n: r.n, ...(r.entries !== undefined ? { entries: r.entries } : {}), ...(r.ok !== undefined ? { ok: r.ok } : {}), ...(r.bytes !== undefined ? { bytes: r.bytes } : {}) }));
  return { rows, total, omitted: all.length - rows.length, counts: [...counts.values()].sort((a, b) => b.n - a.n) };
}

/** The counts of a sampled window in words: the busiest flows that are not all shown. */
export function sampledCounts(counts, most = 4) {
  return counts
    .filter((c) => c.shown < c.n)
    .slice(0, most)
    .map((c) => `${c.from}→${c.to} ${c.type} ×${c.n} in this window, ${c.shown} shown`)
    .join('; ');
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
  // the names again at the foot: a long view scrolled to its newest rows still says whose lifeline is whose
  const foot = rows.length > 12 ? 22 : 0;
  const height = TOP + rows.length * ROW_H + 10 + foot;
  const svg = svgEl('svg', { width, height, class: 'sequence', role: 'img', 'aria-label': `${what}: ${rows.length} rows between ${nodes.join(', ')}` });
  const defs = svgEl('defs');
  const marker = svgEl('marker', { id: 'seq-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse' });
  marker.append(svgEl('path', { d: 'M0,0 L10,5 L0,10 z' }));
  defs.append(marker);
  svg.append(defs);
  for (const n of nodes) {
    svg.append(svgEl('text', { x: x(n), y: 18, class: 'lifeline-name' }, n), svgEl('line', { x1: x(n), x2: x(n), y1: 24, y2: height - foot, class: 'lifeline' }));
    if (foot) svg.append(svgEl('text', { x: x(n), y: height - 6, class: 'lifeline-name', 'aria-hidden': 'true' }, n));
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
