// The overview: one panel per cluster id (a node of another cluster apart, with the refusal that
// keeps it out), members with role, term, reachability, a lag bar of match and applied index against
// the leader's commit index, the protocol versions each speaks, generation and bus; the cluster
// version and whether peer messages are authenticated (and, in a mixed-version window, who holds it
// back); and one compact card per node: its machines' states.
import { h, roleClass, roleLabel, short, stateName } from './dom.js';

function lagBar(m) {
  const commit = m.commitIndex ?? 0;
  const match = m.matchIndex ?? null;
  const applied = m.appliedIndex ?? null;
  const pct = (v) => `${commit > 0 && v !== null ? Math.max(0, Math.min(100, (v / commit) * 100)) : 0}%`;
  const behind = match !== null ? commit - match : applied !== null ? commit - applied : null;
  const text = `${match ?? '–'} · ${applied ?? '–'} / ${commit}${behind !== null && behind > 0 ? ` (−${behind})` : ''}`;
  const bar = h(
    'div',
    { class: 'lag', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': commit, 'aria-valuenow': match ?? applied ?? 0, 'aria-label': `${m.name}: match ${match ?? 'unknown'}, applied ${applied ?? 'unknown'}, leader commit ${commit}`, title: `match index ${match ?? '–'} · applied ${applied ?? '–'} · leader's commit ${commit}` },
    h('span', { class: 'lag-match', style: `width:${pct(match)}` }),
    h('span', { class: 'lag-applied', style: `width:${pct(applied)}` }),
  );
  return h('div', { class: 'lag-cell' }, bar, h('span', { class: 'lag-text mono' }, text));
}

const range = (speaks) => (speaks.min === speaks.max ? `${speaks.min}` : `${speaks.min}..${speaks.max}`);

/** What a member speaks ("1..2"; "–" as in the other columns when nobody has heard it say), and a mark when its key is not committed. */
function speaksCell(m, v) {
  const behind = v?.heldBackBy.includes(m.name) === true;
  const text = m.speaks ? range(m.speaks) : '–';
  const title = m.speaks ? `speaks protocol versions ${range(m.speaks)}${behind ? ': it holds the cluster version back' : ''}` : 'unknown: not heard saying which protocol versions it speaks';
  return h(
    'td',
    { class: `speaks${behind ? ' behind' : ''}`, title },
    h('span', { class: 'mono' }, text),
    m.keyCommitted === false ? h('span', { class: 'key-missing small', title: 'its member key is not committed in the configuration: peer messages are not authenticated until it is' }, ' ⚠ key not committed') : null,
  );
}

/** "cluster version 2 · peer authentication on", and what holds it back when it is off (the node's own note). */
function versionFacts(v) {
  if (!v) return [];
  const auth = v.authentication ?? 'unknown';
  const line = h(
    'p',
    { class: 'version', 'data-version': v.version, 'data-authentication': auth, title: v.from ? `as ${v.from} reports it` : 'no member reports it' },
    h('span', { class: 'version-number' }, `cluster version ${v.version}`),
    v.reported ? null : h('span', { class: 'muted small' }, ' (not reported: release 0.1.0)'),
    ' · ',
    h('span', { class: `auth auth-${auth}` }, auth === 'on' ? '✓ peer authentication on' : auth === 'off' ? '⚠ peer authentication off' : 'peer authentication unknown'),
  );
  if (auth === 'on' || !v.note) return [line];
  // the node's own words; the members that hold the version back, where they do not name them
  const named = new Set(v.note.split(/[^a-z0-9_-]+/));
  const unnamed = v.heldBackBy.filter((name) => !named.has(name));
  const note = h(
    'p',
    { class: `version-note${v.mixed ? ' mixed' : ''}`, role: 'note' },
    h('strong', {}, '⚠ '),
    v.note,
    unnamed.length ? h('strong', {}, ` — held back by ${unnamed.join(', ')}`) : null,
  );
  return [line, note];
}

function clusterPanel(g, main) {
  const foreign = main && g !== main && g.clusterId !== null;
  const title = g.clusterId === null ? 'Not in a cluster yet' : foreign ? 'Another cluster — kept out' : 'Cluster';
  const head = h('h3', {}, title, ' ', g.clusterId ? h('code', { class: 'cid', title: g.clusterId }, g.clusterId) : null);
  const facts = h('p', { class: 'facts' }, `leader ${g.leader ?? '–'} · term ${g.term || '–'} · commit ${g.commitIndex ?? '–'} · ${g.size} node${g.size === 1 ? '' : 's'}`);
  const rows = g.members.map((m) =>
    h(
      'tr',
      { 'data-member': m.name, class: m.reachable ? '' : 'bad' },
      h('th', { scope: 'row' }, m.name, m.voter === false ? h('span', { class: 'muted small' }, ' learner') : null, !m.member && g.clusterId ? h('span', { class: 'muted small' }, ' not in the configuration') : null, m.elsewhere ? h('span', { class: 'muted small', title: `the ${m.name} on this bus belongs to cluster ${m.elsewhere}` }, ' (another node)') : null),
      h('td', { class: `role ${roleClass(m.role)}` }, roleLabel(m.role)),
      h('td', {}, String(m.term ?? '–')),
      h('td', { class: m.reachable ? 'ok' : 'bad' }, m.paused ? '⏸ paused' : m.reachable ? '✓ yes' : m.cutOff ? '✕ no (⌁ cut off)' : '✕ no'),
      h('td', {}, lagBar(m)),
      speaksCell(m, g.clusterVersion),
      h('td', {}, String(m.generation ?? '–')),
      h('td', {}, m.bus ?? '–'),
    ),
  );
  const table = h(
    'table',
    { class: 'members' },
    h('thead', {}, h('tr', {}, ...['member', 'role', 'term', 'reachable', 'log: match · applied / commit', 'speaks', 'gen', 'bus'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...rows),
  );
  const refusals = g.refusals.length
    ? h('div', { class: 'refusals' }, h('h4', {}, foreign ? 'Why it is kept out' : 'Refused'), h('ul', {}, ...g.refusals.map((r) => h('li', { class: 'refusal' }, `${r.node} refused ${r.from}: ${r.message}`))))
    : null;
  return h('section', { class: `cluster panel${foreign ? ' foreign' : ''}`, 'data-cluster': g.clusterId ?? 'none', 'aria-label': `${title} ${g.clusterId ?? ''}` }, head, facts, ...versionFacts(g.clusterVersion), table, refusals);
}

/** Redraw the cluster panels (cheap: a handful of rows). */
export function renderClusters(container, groups) {
  const main = groups.find((g) => g.clusterId !== null) ?? null;
  container.replaceChildren(...(groups.length ? groups.map((g) => clusterPanel(g, main)) : [h('p', { class: 'muted' }, 'waiting for the first node…')]));
}

/** One card per node: name, role, reachability, numbers, and a button per machine with its state. */
export function renderCard(card, node, machines, leads, onOpen) {
  const s = node.status;
  const unreachable = node.reachable === false;
  // paused by the demo: it answers nothing, so it is unreachable too; the card says which
  const paused = s?.paused === true;
  card.root.classList.toggle('leader', leads);
  card.root.classList.toggle('unreachable', unreachable);
  card.root.classList.toggle('paused', paused);
  const raft = [...node.actors.values()].find((a) => a.m === 'raftRole');
  const role = raft ? stateName(raft.states[0] ?? '') || 'raft' : (s?.phase ?? 'no raft');
  card.role.textContent = roleLabel(role);
  card.role.className = `badge role ${roleClass(role)}`;
  const cut = s?.cutOff === true ? ' · ⌁ cut off' : '';
  card.reach.textContent = (paused ? '⏸ paused' : unreachable ? '✕ unreachable' : node.reachable ? '✓ reachable' : '? unknown') + cut;
  card.reach.classList.toggle('bad', unreachable || paused || cut !== '');
  card.root.title = unreachable && s?.error ? `${node.name}: ${s.error}` : '';
  card.facts.textContent = s
    ? `phase ${s.phase ?? '?'} · term ${s.term ?? '?'} · commit ${s.commitIndex ?? '?'} · applied ${s.appliedIndex ?? '?'} · cluster ${short(s.clusterId)}${node.dropped ? ` · ${node.dropped} events dropped` : ''}`
    : 'no status yet';
  // buttons are made once and updated in place, so keyboard focus stays where it is
  if (card.machines.children.length !== machines.length) {
    card.machines.replaceChildren(
      ...machines.map((def) => {
        const b = h('button', { type: 'button', class: 'machine', 'data-machine': def.id }, h('span', { class: 'machine-name' }, def.name === 'raft' ? 'raft role' : def.name), h('span', { class: 'machine-state' }));
        b.addEventListener('click', () => onOpen(node.name, def.id));
        return h('li', {}, b);
      }),
    );
  }
  machines.forEach((def, i) => {
    const b = card.machines.children[i].firstChild;
    const actors = [...node.actors.values()].filter((a) => a.m === def.id);
    const text = actors.length ? actors.flatMap((a) => a.states).map(stateName).join(', ') || 'running' : 'not running';
    b.classList.toggle('idle', actors.length === 0);
    b.lastChild.textContent = text;
    b.setAttribute('aria-label', `${b.firstChild.textContent}: ${text} — open the chart`);
  });
}

export function createCard(name) {
  const role = h('span', { class: 'badge role' });
  const reach = h('span', { class: 'badge reach' });
  const title = h('h3', { class: 'node-title' }, h('span', { class: 'name' }, name), role, reach);
  const facts = h('div', { class: 'facts' });
  const machines = h('ul', { class: 'machines' });
  const root = h('article', { class: 'node', 'data-node': name }, title, facts, machines);
  return { root, title, role, reach, facts, machines };
}
