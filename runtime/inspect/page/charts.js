// Statecharts drawn from the machine definitions: elkjs lays them out once per machine, every node
// gets a clone of the SVG; states are lit by class, transitions flash when they fire.
const SVG = 'http://www.w3.org/2000/svg';
/** average glyph width of an edge label at its 12 px font (style.css) */
const CHAR_W = 6.9;

/** The label as drawn: `[coreRoleIs(role=leader)]` reads `[role=leader]` (the full name is the tooltip). */
export function displayLabel(label) {
  return label.replace(/\[\w+\(([^()]+)\)\]/g, '[$1]');
}

/** An SVG element with attributes (and text). */
export function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The ELK graph of a machine definition (exported so tests can lay out every machine in Node). */
export function elkGraph(def) {
  const byParent = new Map();
  for (const s of def.states) {
    const list = byParent.get(s.parent) ?? [];
    list.push(s);
    byParent.set(s.parent, list);
  }
  const toNode = (s) => {
    const sub = s.invoke.length ? `⟳ ${s.invoke.join(', ')}` : '';
    const width = Math.max(90, Math.max(s.key.length * 8.4, sub.length * 6.6) + 26);
    const children = (byParent.get(s.id) ?? []).map(toNode);
    const node = { id: s.id, width, height: sub ? 48 : 34, labels: [{ text: s.key }], children };
    if (children.length) node.layoutOptions = { 'elk.padding': '[top=26,left=10,bottom=10,right=10]' };
    return node;
  };
  // transitions of the machine's root apply in every state: they have no box to start from, so
  // they are not drawn as edges (they still show in the timeline)
  const drawn = new Set(def.states.map((s) => s.id));
  const edges = def.transitions.flatMap((t, i) =>
    drawn.has(t.source)
      ? t.targets
          .filter((target) => drawn.has(target))
          .map((target, j) => {
            const text = displayLabel(t.label);
            return { id: `e${i}_${j}`, key: t.key, sources: [t.source], targets: [target], labels: text ? [{ text, width: text.length * CHAR_W, height: 14 }] : [] };
          })
      : [],
  );
  const graph = {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeRouting': 'POLYLINE',
      'elk.layered.spacing.nodeNodeBetweenLayers': '30',
      'elk.spacing.nodeNode': '22',
      'elk.spacing.edgeLabel': '2',
      'elk.spacing.edgeEdge': '8',
      'elk.edgeLabels.inline': 'true',
    },
    children: (byParent.get(null) ?? []).map(toNode),
    edges: edges.map(({ key, ...e }) => e),
  };
  return { graph, keys: new Map(edges.map((e) => [e.id, e.key])) };
}

/** Lay out one machine definition; resolves to an SVG template. */
export async function layoutMachine(elk, def) {
  const { graph, keys } = elkGraph(def);
  const laid = await elk.layout(graph);
  return buildSvg(def, laid, keys);
}

function buildSvg(def, laid, keys) {
  const pad = 8;
  const svg = el('svg', { class: 'chart', viewBox: `${-pad} ${-pad} ${laid.width + 2 * pad} ${laid.height + 2 * pad}`, 'data-machine': def.id });
  svg.style.maxWidth = `${Math.round(laid.width + 2 * pad)}px`;
  const defs = el('defs');
  const marker = el('marker', { id: `arrow-${def.id}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  marker.append(el('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }));
  defs.append(marker);
  svg.append(defs);
  const states = new Map(def.states.map((s) => [s.id, s]));
  const drawNode = (n, ox, oy, layer) => {
    const s = states.get(n.id);
    const x = ox + n.x;
    const y = oy + n.y;
    const g = el('g', { class: `state${n.id === def.initial ? ' initial' : ''}`, 'data-state': n.id });
    g.append(el('rect', { x, y, width: n.width, height: n.height, rx: 9 }));
    const compound = (n.children ?? []).length > 0;
    g.append(el('text', { x: x + n.width / 2, y: compound ? y + 17 : y + 21, class: 'name' }, s?.key ?? n.id));
    if (s?.invoke.length && !compound) g.append(el('text', { x: x + n.width / 2, y: y + 39, class: 'invoke' }, `⟳ ${s.invoke.join(', ')}`));
    const title = el('title', {}, [n.id, ...(s?.invoke ?? []).map((i) => `invoke ${i}`), ...(s?.entry ?? []).map((a) => `entry ${a}`)].join('\n'));
    g.append(title);
    layer.append(g);
    for (const c of n.children ?? []) drawNode(c, x, y, layer);
  };
  const nodesLayer = el('g', { class: 'states' });
  for (const n of laid.children ?? []) drawNode(n, 0, 0, nodesLayer);
  const edgesLayer = el('g', { class: 'edges' });
  const collect = (n, ox, oy) => {
    for (const e of n.edges ?? []) drawEdge(e, ox, oy);
    for (const c of n.children ?? []) collect(c, ox + c.x, oy + c.y);
  };
  const drawEdge = (e, ox, oy) => {
    const key = keys.get(e.id);
    const t = def.transitions.find((x) => x.key === key);
    const g = el('g', { class: `edge${t?.kind === 'after' ? ' tick' : ''}`, 'data-edge': key ?? '' });
    for (const sec of e.sections ?? []) {
      const pts = [sec.startPoint, ...(sec.bendPoints ?? []), sec.endPoint];
      const d = pts.map((p, i) => `${i ? 'L' : 'M'}${(p.x + ox).toFixed(1)},${(p.y + oy).toFixed(1)}`).join(' ');
      g.append(el('path', { d, 'marker-end': `url(#arrow-${def.id})` }));
    }
    for (const l of e.labels ?? []) {
      g.append(el('text', { x: ox + l.x, y: oy + l.y + 11, class: 'label' }, l.text));
    }
    if (t) g.append(el('title', {}, `${t.label || '(always)'}${t.actions.length ? ` / ${t.actions.join(', ')}` : ''}`));
    edgesLayer.append(g);
  };
  collect(laid, 0, 0);
  svg.append(edgesLayer, nodesLayer);
  return svg;
}

/** Light the active states of a chart instance. */
export function lightStates(svg, activeIds, status) {
  const active = new Set(activeIds);
  for (const g of svg.querySelectorAll('g.state')) g.classList.toggle('active', active.has(g.getAttribute('data-state')));
  svg.classList.toggle('idle', activeIds.length === 0);
  svg.classList.toggle('stopped', status !== undefined && status !== 'active');
}

/** Flash the edges that fired (ticks only when not already flashing: they fire every heartbeat). */
export function flashEdges(svg, edgeKeys) {
  for (const key of edgeKeys) {
    for (const g of svg.querySelectorAll('g.edge')) {
      if (g.getAttribute('data-edge') !== key) continue;
      if (g.classList.contains('tick') && g.classList.contains('fired')) continue;
      g.classList.remove('fired');
      // restart the animation
      void g.getBoundingClientRect();
      g.classList.add('fired');
      clearTimeout(g._unfire);
      g._unfire = setTimeout(() => g.classList.remove('fired'), 700);
    }
  }
}
