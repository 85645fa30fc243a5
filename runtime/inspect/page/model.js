// The inspector page's model: frames in, the cluster as the page shows it out. Pure and shared:
// the page runs it live and in replay, and the tests run it in Node (replay = same leaders).

export const MAX_EVENTS = 5000;
export const RAFT_MACHINE = 'raftRole';
export const LEADER_STATE = 'raftRole.leader';

export function createModel() {
  return { nodes: new Map(), events: [], leaders: [], t: 0 };
}

function nodeOf(model, name) {
  let node = model.nodes.get(name);
  if (!node) {
    node = { name, actors: new Map(), status: null, reachable: null, dropped: 0 };
    model.nodes.set(name, node);
  }
  return node;
}

function pushEvent(model, event) {
  model.events.push(event);
  if (model.events.length > MAX_EVENTS) model.events.splice(0, model.events.length - MAX_EVENTS);
}

/** Is this node's raft chart in the leader state? */
export function raftLeads(node) {
  for (const actor of node.actors.values()) {
    if (actor.m === RAFT_MACHINE && actor.states.includes(LEADER_STATE)) return true;
  }
  return false;
}

/** The nodes lit as leader: their raft chart says leader and the inspector can reach them. */
export function leadersLit(model) {
  return [...model.nodes.values()].filter((n) => n.reachable !== false && raftLeads(n)).map((n) => n.name);
}

/** Record a leader change: a node's raft chart entered the leader state. */
function noteLeader(model, name, t, wasLeader) {
  const node = model.nodes.get(name);
  if (!node || wasLeader || !raftLeads(node)) return;
  const last = model.leaders[model.leaders.length - 1];
  if (last && last.node === name) return;
  const term = node.status && typeof node.status.term === 'number' ? node.status.term : null;
  model.leaders.push({ t, node: name, term });
}

function setActors(model, name, actors, t) {
  const node = nodeOf(model, name);
  const was = raftLeads(node);
  node.actors = new Map(actors.map((a) => [a.a, a]));
  noteLeader(model, name, t, was);
}

/** A page opened late: the current state of every node and the recent events. */
export function applyInit(model, init) {
  for (const n of init.nodes ?? []) {
    const node = nodeOf(model, n.name);
    if (n.status) {
      node.status = n.status;
      node.reachable = n.status.reachable;
    }
    setActors(model, n.name, n.actors ?? [], init.t ?? Date.now());
  }
  for (const e of init.events ?? []) pushEvent(model, e);
  if (init.cluster) applyFrame(model, { kind: 'cluster', t: init.t ?? Date.now(), nodes: init.cluster.nodes ?? [] });
}

/**
 * Apply one frame. Returns what changed, for the view: nodes to redraw, new timeline events and
 * the transitions that fired (to flash).
 */
export function applyFrame(model, frame) {
  const changed = new Set();
  const added = [];
  const steps = [];
  model.t = Math.max(model.t, frame.t);
  if (frame.kind === 'snapshot') {
    setActors(model, frame.node, frame.actors, frame.t);
    const node = nodeOf(model, frame.node);
    if (frame.status && node.status === null) node.status = { ...frame.status, name: frame.node, reachable: true };
    for (const e of frame.recent ?? []) {
      if (!model.events.some((x) => x.k === e.k && x.node === frame.node && x.t === e.t)) {
        const ev = { ...e, node: frame.node };
        pushEvent(model, ev);
        added.push(ev);
      }
    }
    changed.add(frame.node);
  } else if (frame.kind === 'batch') {
    const node = nodeOf(model, frame.node);
    node.dropped += frame.dropped ?? 0;
    for (const e of frame.events) {
      if (e.k === 'state') {
        const was = raftLeads(node);
        if (e.status === 'active') node.actors.set(e.a, { a: e.a, m: e.m, states: e.states, status: e.status, ctx: e.ctx });
        else node.actors.delete(e.a);
        noteLeader(model, frame.node, e.t, was);
      } else if (e.k === 'step') {
        steps.push({ node: frame.node, actor: e.a, edges: e.edges });
      }
      const ev = { ...e, node: frame.node };
      pushEvent(model, ev);
      added.push(ev);
    }
    changed.add(frame.node);
  } else if (frame.kind === 'cluster') {
    for (const s of frame.nodes) {
      const node = nodeOf(model, s.name);
      const was = raftLeads(node) && node.reachable !== false;
      node.status = s;
      node.reachable = s.reachable;
      // a leader that becomes reachable again counts as a leader again
      if (!was && s.reachable) noteLeader(model, s.name, frame.t, false);
      changed.add(s.name);
    }
  }
  return { changed, added, steps };
}

/** The cluster as the panel shows it, from the reachable nodes' own status. */
export function clusterSummary(model) {
  const statuses = [...model.nodes.values()].map((n) => n.status).filter((s) => s?.reachable);
  const leaderStatus = statuses.find((s) => s.role === 'leader');
  const best = leaderStatus ?? statuses.reduce((a, s) => (!a || (s.term ?? 0) > (a.term ?? 0) ? s : a), null);
  const clusterIds = [...new Set(statuses.map((s) => s.clusterId).filter(Boolean))];
  return {
    clusterIds,
    term: statuses.reduce((m, s) => Math.max(m, s.term ?? 0), 0),
    leader: best?.leader ?? null,
    commitIndex: best?.commitIndex ?? null,
    appliedIndex: best?.appliedIndex ?? null,
    members: best?.members ?? [],
  };
}

/** Rebuild a model from the first `count` frames of a recording (replay). */
export function modelAt(frames, count) {
  const model = createModel();
  for (let i = 0; i < count && i < frames.length; i++) applyFrame(model, frames[i]);
  return model;
}
