// The inspector page: live (Server-Sent Events from /api/stream) or replay (/api/recording with a
// scrubber). Plain ES modules, no build step, nothing loaded from outside this server.
import { flashEdges, layoutMachine, lightStates } from './charts.js';
import { applyFrame, applyInit, clusterSummary, createModel, leadersLit, raftLeads } from './model.js';

const MAX_ROWS = 300;
const TIMELINE_EVERY_MS = 250;
const $ = (sel) => document.querySelector(sel);

const view = {
  model: createModel(),
  machines: [],
  templates: new Map(),
  cards: new Map(),
  paused: false,
  mode: 'live',
  dirty: new Set(),
  steps: [],
  timelineDirty: true,
  lastTimeline: 0,
  scheduled: false,
};

let resolveReady;
const ready = new Promise((r) => (resolveReady = r));
// for tests and for the curious (devtools): the model and what the page shows
window.conclave = {
  ready,
  get model() {
    return view.model;
  },
  leaders: () => view.model.leaders.map((l) => l.node),
  lit: () => leadersLit(view.model),
  replay: null,
};

const short = (id) => (typeof id === 'string' && id.length > 13 ? `${id.slice(0, 8)}…${id.slice(-4)}` : (id ?? '–'));
const stateName = (id) => id.split('.').slice(1).join('.');
const time = (t) => {
  const d = new Date(t);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
};
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// ---- node cards ----

function card(name) {
  let c = view.cards.get(name);
  if (c) return c;
  const title = h('h2', { class: 'node-title' }, h('span', { class: 'name' }, name), h('span', { class: 'badge role' }), h('span', { class: 'badge reach' }));
  const facts = h('div', { class: 'facts' });
  const root = h('article', { class: 'node', 'data-node': name }, title, facts);
  const charts = new Map();
  const grid = h('div', { class: 'charts' });
  for (const def of view.machines) {
    const tpl = view.templates.get(def.id);
    if (!tpl) continue;
    const svg = tpl.cloneNode(true);
    grid.append(h('figure', { class: 'chart-box', 'data-machine': def.id }, h('figcaption', { class: 'chart-title' }, def.title), svg));
    charts.set(def.id, svg);
  }
  root.append(grid);
  c = { root, title, facts, charts };
  view.cards.set(name, c);
  const after = [...view.cards.keys()].sort().find((n) => n > name);
  $('#nodes').insertBefore(root, after ? view.cards.get(after).root : null);
  return c;
}

function renderNode(node) {
  const c = card(node.name);
  const s = node.status;
  const unreachable = node.reachable === false;
  const leads = raftLeads(node) && !unreachable;
  c.root.classList.toggle('leader', leads);
  c.root.classList.toggle('unreachable', unreachable);
  const role = c.title.querySelector('.role');
  const raft = [...node.actors.values()].find((a) => a.m === 'raftRole');
  role.textContent = raft ? stateName(raft.states[0] ?? '') || 'raft' : (s?.phase ?? 'no raft');
  role.classList.toggle('leader', leads);
  const reach = c.title.querySelector('.reach');
  reach.textContent = unreachable ? 'unreachable' : node.reachable ? 'reachable' : 'unknown';
  reach.classList.toggle('bad', unreachable);
  c.root.title = unreachable && s?.error ? `${node.name}: ${s.error}` : '';
  c.facts.textContent = s
    ? `phase ${s.phase ?? '?'} · term ${s.term ?? '?'} · commit ${s.commitIndex ?? '?'} · applied ${s.appliedIndex ?? '?'} · cluster ${short(s.clusterId)}${node.dropped ? ` · ${node.dropped} events dropped` : ''}`
    : 'no status yet';
  for (const [machineId, svg] of c.charts) {
    const actors = [...node.actors.values()].filter((a) => a.m === machineId);
    lightStates(svg, actors.flatMap((a) => a.states), actors[0]?.status);
    svg.classList.toggle('stopped', unreachable);
  }
}

// ---- cluster panel ----

function renderCluster() {
  const sum = clusterSummary(view.model);
  const facts = $('#cluster-facts');
  facts.replaceChildren();
  const fact = (k, v) => facts.append(h('dt', {}, k), h('dd', {}, String(v ?? '–')));
  fact('cluster id', sum.clusterIds.length ? sum.clusterIds.join(' ≠ ') : '–');
  fact('term', sum.term);
  fact('leader', sum.leader);
  fact('commit', sum.commitIndex);
  fact('applied', sum.appliedIndex);
  fact('nodes', view.model.nodes.size);
  const body = $('#members tbody');
  body.replaceChildren(
    ...sum.members.map((m) =>
      h(
        'tr',
        { class: m.reachable ? '' : 'bad', 'data-member': m.name },
        h('td', {}, m.name),
        h('td', {}, m.voter ? 'voter' : 'learner'),
        h('td', {}, m.leader ? '★' : ''),
        h('td', {}, m.reachable ? 'yes' : 'no'),
        h('td', {}, String(m.matchIndex)),
      ),
    ),
  );
  $('#leaders').replaceChildren(...view.model.leaders.slice(-50).map((l) => h('li', {}, `${l.node}${l.term ? ` (term ${l.term})` : ''} · ${time(l.t)}`)));
}

// ---- timeline ----

const ROUTINE_EVENTS = new Set(['PEER_MESSAGE']);
/** heartbeats of the statecharts: timer ticks and raft message batches */
const isRoutine = (e) =>
  (e.k === 'event' && (e.type.startsWith('xstate.after.') || ROUTINE_EVENTS.has(e.type))) || (e.k === 'step' && e.edges.every((x) => x.includes('|xstate.after.')));

function describe(e) {
  switch (e.k) {
    case 'state':
      return ['state', `${e.states.map(stateName).join(', ') || e.status}${e.ctx?.clusterId ? ` · cluster ${short(e.ctx.clusterId)}` : ''}`];
    case 'event':
      return [e.type, `${e.src ? `from ${e.src}` : ''}${e.n > 1 ? ` ×${e.n}` : ''}`];
    case 'step':
      return ['transition', `${e.edges.map((k) => {
        const [src, , targets] = k.split('|');
        return `${stateName(src)} → ${targets.split(',').map(stateName).join(',')}`;
      }).join('; ')}${e.n > 1 ? ` ×${e.n}` : ''}`];
    case 'actor':
      return ['actor', `spawned${e.m ? ` (${e.m})` : ''}${e.parent ? ` by ${e.parent}` : ''}`];
    case 'refused':
      return [e.type, `${e.message} [${e.reason}; local ${e.localClusterId} · remote ${e.remoteClusterId}]`];
    default:
      return [e.k, ''];
  }
}

function renderTimeline() {
  const node = $('#filter-node').value;
  const type = $('#filter-type').value.trim().toLowerCase();
  const hideTicks = $('#hide-ticks').checked;
  const rows = [];
  const events = view.model.events;
  let matched = 0;
  for (let i = events.length - 1; i >= 0 && rows.length < MAX_ROWS; i--) {
    const e = events[i];
    if (node && e.node !== node) continue;
    if (hideTicks && isRoutine(e)) continue;
    const [what, detail] = describe(e);
    if (type && !`${e.k} ${what}`.toLowerCase().includes(type)) continue;
    matched++;
    rows.push(h('tr', { class: e.k }, h('td', {}, time(e.t)), h('td', {}, e.node), h('td', {}, e.a), h('td', {}, what), h('td', {}, detail)));
  }
  $('#events').replaceChildren(...rows);
  $('#timeline-count').textContent = `${matched} shown of ${events.length} kept`;
  const select = $('#filter-node');
  const names = [...view.model.nodes.keys()].sort();
  if (select.options.length !== names.length + 1) {
    const current = select.value;
    select.replaceChildren(h('option', { value: '' }, 'all nodes'), ...names.map((n) => h('option', { value: n }, n)));
    select.value = current;
  }
}

// ---- rendering loop ----

function schedule() {
  if (view.scheduled || view.paused) return;
  view.scheduled = true;
  requestAnimationFrame(render);
}

function render() {
  view.scheduled = false;
  if (view.paused) return;
  for (const name of view.dirty) {
    const node = view.model.nodes.get(name);
    if (node) renderNode(node);
  }
  view.dirty.clear();
  for (const s of view.steps) {
    const c = view.cards.get(s.node);
    if (!c) continue;
    for (const svg of c.charts.values()) flashEdges(svg, s.edges);
  }
  view.steps = [];
  renderCluster();
  const now = performance.now();
  if (view.timelineDirty && now - view.lastTimeline >= TIMELINE_EVERY_MS) {
    view.timelineDirty = false;
    view.lastTimeline = now;
    renderTimeline();
  } else if (view.timelineDirty) {
    setTimeout(schedule, TIMELINE_EVERY_MS);
  }
}

function renderAll() {
  for (const name of view.model.nodes.keys()) view.dirty.add(name);
  view.timelineDirty = true;
  schedule();
}

function onFrame(frame, flash = true) {
  const { changed, added, steps } = applyFrame(view.model, frame);
  for (const n of changed) view.dirty.add(n);
  if (added.length || frame.kind === 'cluster') view.timelineDirty = true;
  if (flash && steps.length) view.steps.push(...steps.slice(-64));
  schedule();
}

// ---- live ----

function live() {
  const source = new EventSource('/api/stream');
  const conn = $('#conn');
  source.addEventListener('init', (e) => {
    const init = JSON.parse(e.data);
    const leaders = view.model.leaders;
    view.model = createModel();
    view.model.leaders = leaders;
    applyInit(view.model, { ...init, t: Date.now() });
    conn.textContent = 'connected';
    conn.classList.remove('bad');
    renderAll();
    resolveReady();
  });
  source.addEventListener('frame', (e) => onFrame(JSON.parse(e.data)));
  source.onerror = () => {
    conn.textContent = 'reconnecting…';
    conn.classList.add('bad');
  };
}

// ---- replay ----

async function replay() {
  const recording = await (await fetch('/api/recording')).json();
  const frames = recording.frames;
  $('#replay').hidden = false;
  const scrubber = $('#scrubber');
  scrubber.max = String(frames.length);
  let position = 0;
  let timer = null;
  const t0 = frames[0]?.t ?? recording.header.startedAt;
  const label = () => {
    const t = position > 0 ? frames[position - 1].t : t0;
    $('#replay-pos').textContent = `frame ${position}/${frames.length} · +${((t - t0) / 1000).toFixed(3)} s`;
  };
  const seek = (to) => {
    to = Math.max(0, Math.min(frames.length, to));
    if (to < position) {
      view.model = createModel();
      position = 0;
      view.dirty = new Set(view.cards.keys());
    }
    const flash = to - position < 20;
    while (position < to) onFrame(frames[position++], flash);
    scrubber.value = String(position);
    label();
    renderAll();
  };
  const stop = () => {
    clearTimeout(timer);
    timer = null;
    $('#play').textContent = 'Play';
  };
  const step = () => {
    if (position >= frames.length) return stop();
    const speed = Number($('#speed').value);
    seek(position + (speed === 0 ? 50 : 1));
    const next = frames[position];
    const prev = frames[position - 1];
    const wait = speed === 0 || !next || !prev ? 0 : Math.min(1000, (next.t - prev.t) / speed);
    timer = setTimeout(step, wait);
  };
  $('#play').addEventListener('click', () => {
    if (timer) return stop();
    $('#play').textContent = 'Pause';
    step();
  });
  scrubber.addEventListener('input', () => {
    stop();
    seek(Number(scrubber.value));
  });
  window.conclave.replay = { length: frames.length, seek, position: () => position };
  label();
  resolveReady();
}

// ---- boot ----

async function boot() {
  const [mode, defs] = await Promise.all([fetch('/api/mode').then((r) => r.json()), fetch('/api/machines').then((r) => r.json())]);
  view.mode = mode.mode;
  $('#mode').textContent = mode.mode === 'replay' ? `replay ${mode.file ?? ''}` : 'live';
  view.machines = defs.machines;
  // the global of elk.bundled.js (a classic script, loaded first)
  const elk = new globalThis.ELK();
  for (const def of view.machines) view.templates.set(def.id, await layoutMachine(elk, def));
  $('#pause').addEventListener('click', () => {
    view.paused = !view.paused;
    document.body.classList.toggle('paused', view.paused);
    $('#pause').textContent = view.paused ? 'Resume' : 'Pause';
    if (!view.paused) renderAll();
  });
  for (const id of ['#filter-node', '#filter-type', '#hide-ticks']) {
    $(id).addEventListener('input', () => {
      view.timelineDirty = true;
      view.lastTimeline = 0;
      schedule();
    });
  }
  if (view.mode === 'replay') await replay();
  else live();
}

boot().catch((err) => {
  document.body.prepend(h('pre', { class: 'fatal' }, `inspector page failed: ${err?.stack ?? err}`));
});
