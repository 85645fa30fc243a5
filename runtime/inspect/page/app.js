// The inspector page: live (Server-Sent Events from /api/stream) or replay (/api/recording with a
// scrubber). Plain ES modules, no build step, nothing loaded from outside this server.
import { layoutMachine } from './charts.js';
import { h, short, stateName, time } from './dom.js';
import { setupControls } from './controls.js';
import { createFocus } from './focus.js';
import { renderElectionList, renderLanes, renderLegend } from './lanes.js';
import { currentMessages, followNewest, renderMessages } from './messages.js';
import { renderSequence, sequenceRows } from './sequence.js';
import { applyFrame, applyInit, clusterGroups, createModel, leadersLit, namedElections, raftLeads } from './model.js';
import { createCard, renderCard, renderClusters } from './overview.js';

const MAX_ROWS = 300;
const TIMELINE_EVERY_MS = 250;
/** a panel scrolled out of view is drawn this often (when it comes into view: at once) */
const OFFSCREEN_EVERY_MS = 2000;
const CARDS_EVERY_MS = 100;
/** the elections timeline shows this much of the recent past, live */
const LANES_WINDOW_MS = 120_000;
/** an election's messages: from a little before it started to a little after it ended */
const ELECTION_MARGIN_MS = 500;
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
  lastCards: 0,
  scheduled: false,
  /** the panels in view (an IntersectionObserver keeps it), and when each was last drawn */
  visible: new Set(),
  drawnAt: new Map(),
  /** the sequence panel: join handshakes, or raft messages over `window` ({from, to}; null: live) */
  sequence: { mode: 'handshakes', window: null },
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
  elections: () => namedElections(view.model),
  sequence: () => sequenceRows(view.model.handshakes, view.model.refusals),
  messages: () => currentMessages(document, view.model, view.sequence.window),
  focus: null,
  replay: null,
};

// ---- node cards ----

function card(name) {
  let c = view.cards.get(name);
  if (c) return c;
  c = createCard(name);
  view.cards.set(name, c);
  const after = [...view.cards.keys()].sort().find((n) => n > name);
  $('#nodes').insertBefore(c.root, after ? view.cards.get(after).root : null);
  return c;
}

function renderNode(node) {
  const leads = raftLeads(node) && node.reachable !== false;
  renderCard(card(node.name), node, view.machines, leads, (name, machineId) => view.focus.open(name, machineId));
}

// ---- overview and elections ----

function renderOverview() {
  renderClusters($('#clusters'), clusterGroups(view.model));
}

function renderElections() {
  const el = view.model.elections;
  const starts = [...el.lanes.values()].flatMap((segs) => (segs.length ? [segs[0].from] : []));
  let from = starts.length ? Math.min(...starts) : view.model.t;
  // live: the recent past; a replay shows the whole recording up to where it is
  if (view.mode !== 'replay') from = Math.max(from, view.model.t - LANES_WINDOW_MS);
  renderLanes($('#lanes'), el, from, Math.max(view.model.t, from + 1000));
  renderElectionList($('#election-list tbody'), namedElections(view.model));
}

// ---- messages ----

function renderSequenceView() {
  const { mode, window: w } = view.sequence;
  $('#seq-handshakes').setAttribute('aria-pressed', String(mode === 'handshakes'));
  $('#seq-messages').setAttribute('aria-pressed', String(mode === 'messages'));
  $('#seq-live').hidden = mode !== 'messages' || w === null;
  $('#seq-options').hidden = mode !== 'messages';
  if (mode === 'handshakes') {
    $('#seq-caption').textContent = "messages and decisions, from the leader's membership chart and the node's join chart";
    renderSequence($('#sequence-view'), sequenceRows(view.model.handshakes, view.model.refusals));
    return;
  }
  renderMessages(document, view.model, w);
}

function showSequence(mode, window = null) {
  view.sequence = { mode, window };
  followNewest();
  view.timelineDirty = true;
  view.lastTimeline = 0;
  schedule();
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
  const now = performance.now();
  // the cards at most every CARDS_EVERY_MS: a busy cluster changes every node in every frame
  if (view.dirty.size && now - view.lastCards >= CARDS_EVERY_MS) {
    view.lastCards = now;
    for (const name of view.dirty) {
      const node = view.model.nodes.get(name);
      if (node) renderNode(node);
    }
    view.dirty.clear();
  } else if (view.dirty.size) {
    setTimeout(schedule, CARDS_EVERY_MS);
  }
  const steps = view.steps;
  view.steps = [];
  if (view.timelineDirty && now - view.lastTimeline >= TIMELINE_EVERY_MS) {
    view.timelineDirty = false;
    view.lastTimeline = now;
    if (due('overview', now)) renderOverview();
    if (due('elections', now)) renderElections();
    if (due('sequence', now)) renderSequenceView();
    if (due('timeline', now)) renderTimeline();
    view.focus.update(steps);
    // a panel out of view is still to be drawn, later
    if (view.timelineDirty) setTimeout(schedule, TIMELINE_EVERY_MS);
  } else if (view.timelineDirty) {
    if (steps.length) view.focus.update(steps);
    setTimeout(schedule, TIMELINE_EVERY_MS);
  }
}

/** whether panel `id` is drawn in this round: always when in view, every OFFSCREEN_EVERY_MS when not */
function due(id, now) {
  const last = view.drawnAt.get(id);
  if (!view.visible.has(id) && last !== undefined && now - last < OFFSCREEN_EVERY_MS) {
    view.timelineDirty = true;
    return false;
  }
  view.drawnAt.set(id, now);
  return true;
}

function watchVisibility() {
  const observer = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (e.isIntersecting) view.visible.add(e.target.id);
      else view.visible.delete(e.target.id);
    }
    // a panel that comes into view is drawn at once
    view.timelineDirty = true;
    view.lastTimeline = 0;
    schedule();
  });
  for (const id of ['overview', 'elections', 'sequence', 'timeline']) observer.observe($(`#${id}`));
}

function renderAll() {
  for (const name of view.model.nodes.keys()) view.dirty.add(name);
  view.timelineDirty = true;
  schedule();
}

function onFrame(frame, flash = true) {
  const { changed, added, steps } = applyFrame(view.model, frame);
  for (const n of changed) view.dirty.add(n);
  if (added.length || changed.size || frame.kind === 'cluster') view.timelineDirty = true;
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
  view.focus = createFocus({ dialog: $('#focus'), templates: () => view.templates, machines: () => view.machines, model: () => view.model });
  window.conclave.focus = view.focus;
  renderLegend($('#lane-legend'));
  watchVisibility();
  $('#pause').addEventListener('click', () => {
    view.paused = !view.paused;
    document.body.classList.toggle('paused', view.paused);
    $('#pause').textContent = view.paused ? 'Resume' : 'Pause';
    if (!view.paused) renderAll();
  });
  $('#seq-handshakes').addEventListener('click', () => showSequence('handshakes'));
  $('#seq-messages').addEventListener('click', () => showSequence('messages'));
  $('#seq-live').addEventListener('click', () => showSequence('messages'));
  // an election's "show": the raft messages around it (pre-votes, votes, the new leader's first appends)
  $('#election-list').addEventListener('click', (e) => {
    const button = e.target.closest('button.show-messages');
    if (!button) return;
    const start = Number(button.dataset.start);
    const end = button.dataset.end ? Number(button.dataset.end) : view.model.t;
    showSequence('messages', { from: start - ELECTION_MARGIN_MS, to: end + ELECTION_MARGIN_MS });
    $('#sequence').scrollIntoView({ block: 'nearest' });
  });
  for (const id of ['#seq-window', '#seq-no-heartbeats']) $(id).addEventListener('input', () => showSequence('messages', view.sequence.window));
  for (const id of ['#filter-node', '#filter-type', '#hide-ticks']) {
    $(id).addEventListener('input', () => {
      view.timelineDirty = true;
      view.lastTimeline = 0;
      schedule();
    });
  }
  if (view.mode === 'replay') await replay();
  else {
    live();
    await setupControls($('#controls'));
  }
}

boot().catch((err) => {
  document.body.prepend(h('pre', { class: 'fatal' }, `inspector page failed: ${err?.stack ?? err}`));
});
