// One chart full size: the node's actor of that machine, laid out by elkjs at 100 % (labels ≥ 11 px),
// zoom (buttons, + / − / 0, ctrl+wheel) and pan (drag, arrow keys, scrollbars), the active state lit,
// the last transitions listed with the event that fired them; guards and actions on hover (titles).
import { flashEdges, lightStates } from './charts.js';
import { h, stateName, time } from './dom.js';

const MAX_STEPS = 40;
const ZOOMS = [0.25, 0.33, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2, 3];

export function createFocus({ dialog, templates, machines, model }) {
  const $ = (sel) => dialog.querySelector(sel);
  const viewport = $('#focus-viewport');
  // a scrollable region the keyboard can reach (arrow keys scroll it)
  viewport.tabIndex = 0;
  viewport.setAttribute('role', 'region');
  viewport.setAttribute('aria-label', 'the chart: arrow keys scroll, + and − zoom, 0 resets, drag to pan');
  let current = null; // { node, machineId, svg, width, height, zoom }

  const setZoom = (zoom) => {
    if (!current) return;
    const { svg } = current;
    // keep the centre where it was
    const cx = (viewport.scrollLeft + viewport.clientWidth / 2) / current.zoom;
    const cy = (viewport.scrollTop + viewport.clientHeight / 2) / current.zoom;
    current.zoom = zoom;
    svg.setAttribute('width', String(Math.round(current.width * zoom)));
    svg.setAttribute('height', String(Math.round(current.height * zoom)));
    viewport.scrollLeft = cx * zoom - viewport.clientWidth / 2;
    viewport.scrollTop = cy * zoom - viewport.clientHeight / 2;
    $('#zoom-level').textContent = `${Math.round(zoom * 100)}%`;
  };
  const step = (dir) => {
    if (!current) return;
    const i = ZOOMS.findIndex((z) => z >= current.zoom - 1e-6);
    setZoom(ZOOMS[Math.max(0, Math.min(ZOOMS.length - 1, (i < 0 ? ZOOMS.length - 1 : i) + dir))]);
  };
  const fit = () => {
    if (!current) return;
    setZoom(Math.min(1, viewport.clientWidth / current.width, viewport.clientHeight / current.height));
  };

  $('#zoom-in').addEventListener('click', () => step(1));
  $('#zoom-out').addEventListener('click', () => step(-1));
  $('#zoom-fit').addEventListener('click', fit);
  $('#zoom-reset').addEventListener('click', () => setZoom(1));
  $('#focus-close').addEventListener('click', () => dialog.close());
  viewport.addEventListener('keydown', (e) => {
    if (e.key === '+' || e.key === '=') step(1);
    else if (e.key === '-' || e.key === '_') step(-1);
    else if (e.key === '0') setZoom(1);
    else return;
    e.preventDefault();
  });
  viewport.addEventListener(
    'wheel',
    (e) => {
      if (!e.ctrlKey) return;
      e.preventDefault();
      step(e.deltaY < 0 ? 1 : -1);
    },
    { passive: false },
  );
  let drag = null;
  viewport.addEventListener('pointerdown', (e) => {
    drag = { x: e.clientX, y: e.clientY, left: viewport.scrollLeft, top: viewport.scrollTop };
    viewport.setPointerCapture(e.pointerId);
  });
  viewport.addEventListener('pointermove', (e) => {
    if (!drag) return;
    viewport.scrollLeft = drag.left - (e.clientX - drag.x);
    viewport.scrollTop = drag.top - (e.clientY - drag.y);
  });
  viewport.addEventListener('pointerup', () => (drag = null));
  dialog.addEventListener('close', () => {
    current = null;
    viewport.replaceChildren();
  });

  const hideTicks = $('#focus-hide-ticks');
  hideTicks.addEventListener('change', () => update());
  const stepsOf = (node, machineId) => {
    const rows = [];
    const events = model().events;
    for (let i = events.length - 1; i >= 0 && rows.length < MAX_STEPS; i--) {
      const e = events[i];
      if (e.node !== node || e.k !== 'step') continue;
      for (const key of e.edges) {
        if (!key.startsWith(`${machineId}.`) && !key.startsWith(`${machineId}|`)) continue;
        // a timer tick that stays in its state says nothing new
        const [source, eventType, targets] = key.split('|');
        if (hideTicks.checked && eventType.startsWith('xstate.after.') && source === targets) continue;
        rows.push({ t: e.t, key, ev: e.ev, n: e.n });
      }
    }
    return rows.slice(0, MAX_STEPS);
  };

  const describeStep = (def, row) => {
    const [source, eventType, targets] = row.key.split('|');
    const t = def.transitions.find((x) => x.key === row.key);
    const event = t?.label || (row.ev ? `(always, after ${row.ev})` : '(always)');
    const from = source === def.id ? '(any state)' : stateName(source);
    const to = targets.split(',').map(stateName).join(', ');
    const title = [`event: ${eventType || row.ev || '(always)'}`, t?.guard ? `guard: ${t.guard}` : null, t?.actions.length ? `actions: ${t.actions.join(', ')}` : null].filter(Boolean).join('\n');
    return h('li', { title }, h('span', { class: 'mono muted' }, time(row.t)), ' ', h('b', {}, `${from} → ${to}`), ' ', h('span', { class: 'ev' }, event), row.n > 1 ? ` ×${row.n}` : '');
  };

  /** Refresh what is lit and listed (cheap; called with the page's render loop). */
  const update = (steps = []) => {
    if (!current) return;
    const node = model().nodes.get(current.node);
    const actors = node ? [...node.actors.values()].filter((a) => a.m === current.machineId) : [];
    const active = actors.flatMap((a) => a.states);
    lightStates(current.svg, active, actors[0]?.status);
    $('#focus-active').textContent = active.length ? active.map(stateName).join(', ') : 'not running on this node now';
    const mine = steps.filter((s) => s.node === current.node);
    if (mine.length) flashEdges(current.svg, mine.flatMap((s) => s.edges));
    const def = machines().find((d) => d.id === current.machineId);
    $('#focus-steps').replaceChildren(...stepsOf(current.node, current.machineId).map((row) => describeStep(def, row)));
  };

  const open = (node, machineId) => {
    const def = machines().find((d) => d.id === machineId);
    const tpl = templates().get(machineId);
    if (!def || !tpl) return;
    const svg = tpl.cloneNode(true);
    const [, , width, height] = svg.getAttribute('viewBox').split(' ').map(Number);
    svg.style.maxWidth = 'none';
    svg.classList.add('focused');
    current = { node, machineId, svg, width, height, zoom: 1 };
    viewport.replaceChildren(svg);
    $('#focus-title').textContent = `${node} · ${def.title}`;
    if (!dialog.open) dialog.showModal();
    setZoom(1);
    viewport.scrollLeft = 0;
    viewport.scrollTop = 0;
    viewport.focus();
    update();
    // bring the lit state into view
    const lit = svg.querySelector('g.state.active rect');
    if (lit) {
      const box = lit.getBoundingClientRect();
      const port = viewport.getBoundingClientRect();
      viewport.scrollLeft += box.left + box.width / 2 - (port.left + port.width / 2);
      viewport.scrollTop += box.top + box.height / 2 - (port.top + port.height / 2);
    }
  };

  return { open, update, get current() { return current; } };
}
