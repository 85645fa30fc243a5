// The inspector page's model: frames in, the cluster as the page shows it out. Pure and shared:
// the page runs it live and in replay, and the tests run it in Node (replay = same leaders).
import { createElections, electionList, noteRaftStarted, noteRaftState, noteRaftStep, RAFT_MACHINE } from './elections.js';

export { RAFT_MACHINE };
export const MAX_EVENTS = 5000;
/** raft messages kept for the sequence view (each already merged per batch, with a count) */
export const MAX_MESSAGES = 5000;
export const LEADER_STATE = 'raftRole.leader';

export function createModel() {
  // `ids`: node id → name, as status answers told it; kept when a node's later answer (unreachable) carries no id
  return { nodes: new Map(), events: [], refusals: [], handshakes: [], messages: [], leaders: [], t: 0, elections: createElections(), ids: new Map() };
}

function setStatus(model, node, status) {
  node.status = status;
  if (typeof status?.nodeId === 'string') model.ids.set(status.nodeId, node.name);
}

const isRaftActor = (node, a) => node.actors.get(a)?.m === RAFT_MACHINE || a === `raft:${node.name}`;
const raftActorOf = (node) => [...node.actors.values()].find((a) => a.m === RAFT_MACHINE);
/** the raft core's {term, leader} as the state event's context summary carries it */
const coreOf = (actor) => (actor?.ctx && typeof actor.ctx.core === 'object' ? actor.ctx.core : null);

/** The raft core names nodes by node id; the page by node name (null: no node seen has that id). */
export function nameOfId(model, id) {
  const known = model.ids.get(id);
  if (known !== undefined) return known;
  for (const n of model.nodes.values()) {
    if (n.status?.nodeId === id) return n.name;
    for (const a of n.actors.values()) if (a.ctx?.nodeId === id) return n.name;
  }
  return null;
}

/** The elections, newest first, each leader by name as far as the page knows the names now. */
export function namedElections(model) {
  return electionList(model.elections, (id) => nameOfId(model, id) ?? id);
}

function withLeaderName(model, core) {
  const name = core?.leader ? nameOfId(model, core.leader) : null;
  return name ? { ...core, leader: name } : core;
}

function nodeOf(model, name) {
  let node = model.nodes.get(name);
  if (!node) {
    node = { name, actors: new Map(), status: null, reachable: null, dropped: 0 };
    model.nodes.set(name, node);
  }
  return node;
}

const MAX_REFUSALS = 100;
const MAX_HANDSHAKE_STEPS = 300;
const HANDSHAKE_MACHINES = new Set(['membership', 'join']);

/**
 * The same event, received twice (a page opened late gets it in both the notable list and the recent
 * events, as separate copies). Steps of one chart often share a millisecond, so the time and the
 * actor do not identify an event: its whole content does.
 */
function sameEvent(a, b) {
  return a.t === b.t && a.node === b.node && a.k === b.k && JSON.stringify(a) === JSON.stringify(b);
}

/** Refusals and join-handshake steps are kept apart too: routine events push them out of `events` within seconds. */
function keepNotable(model, event) {
  const list = event.k === 'refused' ? model.refusals : (event.k === 'state' || event.k === 'actor') && HANDSHAKE_MACHINES.has(event.m) ? model.handshakes : null;
  if (!list || list.some((r) => sameEvent(r, event))) return;
  list.push(event);
  if (list.length > (list === model.refusals ? MAX_REFUSALS : MAX_HANDSHAKE_STEPS)) list.shift();
}

function pushEvent(model, event) {
  // raft messages go to the sequence view only: at a few hundred a second they would push everything else out
  if (event.k === 'msg') {
    model.messages.push(event);
    if (model.messages.length > MAX_MESSAGES) model.messages.splice(0, model.messages.length - MAX_MESSAGES);
    return;
  }
  keepNotable(model, event);
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

function setActors(model, name, actors, t, restarted = false) {
  const node = nodeOf(model, name);
  const was = raftLeads(node);
  node.actors = new Map(actors.map((a) => [a.a, a]));
  noteLeader(model, name, t, was);
  const raft = raftActorOf(node);
  if (raft) {
    if (restarted) noteRaftStarted(model.elections, name, t);
    noteRaftState(model.elections, name, t, raft.states[0], withLeaderName(model, coreOf(raft)), false, clusterIdOf(node));
  }
}

/** A page opened late: the current state of every node and the recent events. */
export function applyInit(model, init) {
  for (const n of init.nodes ?? []) {
    const node = nodeOf(model, n.name);
    if (n.status) {
      setStatus(model, node, n.status);
      node.reachable = n.status.reachable;
    }
    setActors(model, n.name, n.actors ?? [], init.t ?? Date.now());
  }
  for (const e of init.notable ?? []) keepNotable(model, e);
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
    // a node sends a snapshot when it first sees this inspector: a node seen before has restarted
    setActors(model, frame.node, frame.actors, frame.t, true);
    const node = nodeOf(model, frame.node);
    if (frame.status && node.status === null) setStatus(model, node, { ...frame.status, name: frame.node, reachable: true });
    for (const e of frame.recent ?? []) {
      const ev = { ...e, node: frame.node };
      if (!model.events.some((x) => sameEvent(x, ev))) {
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
        if (e.m === RAFT_MACHINE) noteRaftState(model.elections, frame.node, e.t, e.states[0], withLeaderName(model, coreOf(e)), e.status !== 'active', clusterIdOf(node));
      } else if (e.k === 'step') {
        steps.push({ node: frame.node, actor: e.a, edges: e.edges, ev: e.ev, t: e.t });
        if (isRaftActor(node, e.a)) noteRaftStep(model.elections, frame.node, e.ev);
      } else if (e.k === 'actor' && e.m === RAFT_MACHINE) {
        noteRaftStarted(model.elections, frame.node, e.t);
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
      const wasReachable = node.reachable;
      setStatus(model, node, s);
      node.reachable = s.reachable;
      // a leader that becomes reachable again counts as a leader again
      if (!was && s.reachable) noteLeader(model, s.name, frame.t, false);
      // its lane says unreachable from here until its chart reports a state again
      if (s.reachable === false && wasReachable !== false) noteRaftState(model.elections, s.name, frame.t, null, null, s.paused ? 'paused' : true, clusterIdOf(node));
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

/** The node's cluster id: its status, else its bootstrap chart's context. */
function clusterIdOf(node) {
  if (node.status?.clusterId) return node.status.clusterId;
  for (const a of node.actors.values()) if (typeof a.ctx?.clusterId === 'string') return a.ctx.clusterId;
  return null;
}

const isSpeaks = (v) => typeof v?.min === 'number' && typeof v?.max === 'number';
const isVersionView = (v) => typeof v?.version === 'number' && isSpeaks(v?.speaks);
const byNewest = (a, s) => (!a || (s.term ?? 0) > (a.term ?? 0) || ((s.term ?? 0) === (a.term ?? 0) && (s.commitIndex ?? 0) > (a.commitIndex ?? 0)) ? s : a);
/** what release 0.1.0 speaks: it reports no versions (its status has no clusterVersion, its members no speaks) */
const SPEAKS_0_1 = Object.freeze({ min: 1, max: 1 });

/**
 * The status whose cluster version the panel shows: the leader's, else the newest one that reports
 * it (in a mixed-version window the leader may be a node of release 0.1.0, which reports none).
 */
function versionSourceOf(statuses, leaderStatus) {
  if (isVersionView(leaderStatus?.clusterVersion)) return leaderStatus;
  return statuses.filter((s) => isVersionView(s.clusterVersion)).reduce(byNewest, null);
}

/** what `m` of the configuration speaks and whether its key is committed, from the listings that say it, else its own status */
function memberVersion(listings, own) {
  const listed = listings.map((l) => l.get(own.name)).filter(Boolean);
  const speaks = listed.map((m) => m.speaks).find(isSpeaks) ?? (isVersionView(own.status?.clusterVersion) ? own.status.clusterVersion.speaks : null);
  const keyCommitted = listed.map((m) => m.keyCommitted).find((k) => typeof k === 'boolean') ?? null;
  // a member answering without any version: release 0.1.0
  const old = speaks === null && own.status?.reachable === true && own.status.phase === 'member' && own.status.clusterVersion === undefined;
  return { speaks: old ? SPEAKS_0_1 : speaks, keyCommitted };
}

/**
 * The cluster version as the panel shows it: the version, whether peer authentication is on, the
 * reporting node's note, and the members that hold a higher version back (they speak less than the
 * reporting node). No member reports it, but members answer: release 0.1.0, version 1.
 */
function clusterVersionShown(source, members, anyMemberAnswers) {
  const cv = source?.clusterVersion;
  if (!cv) {
    if (!anyMemberAnswers) return null;
    return { version: 1, reported: false, authentication: 'off', note: 'no member reports a cluster version: members of release 0.1.0 (version 1), peer messages are not authenticated', from: null, heldBackBy: [], mixed: false };
  }
  const heldBackBy = members.filter((m) => m.member && m.speaks !== null && m.speaks.max < cv.speaks.max).map((m) => m.name);
  return {
    version: cv.version,
    reported: true,
    authentication: cv.authentication === 'on' || cv.authentication === 'off' ? cv.authentication : null,
    note: typeof cv.note === 'string' ? cv.note : null,
    from: source.name,
    heldBackBy,
    mixed: heldBackBy.length > 0,
  };
}

/**
 * The overview: one group per cluster id (nodes with none yet in a group of their own), each with
 * its leader's view (term, commit index, members with match index) and every node's own numbers;
 * the refusals that keep another cluster's node out are attached to both groups.
 */
export function clusterGroups(model) {
  const groups = new Map();
  for (const node of [...model.nodes.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const id = clusterIdOf(node);
    let g = groups.get(id);
    if (!g) {
      g = { clusterId: id, nodes: [], refusals: [] };
      groups.set(id, g);
    }
    g.nodes.push(node);
  }
  const refusals = model.refusals;
  return [...groups.values()]
    .map((g) => {
      const statuses = g.nodes.map((n) => n.status).filter((s) => s?.reachable);
      const leaderStatus = statuses.find((s) => s.role === 'leader') ?? null;
      const best = leaderStatus ?? statuses.reduce((a, s) => (!a || (s.term ?? 0) > (a.term ?? 0) ? s : a), null);
      const commitIndex = leaderStatus?.commitIndex ?? best?.commitIndex ?? null;
      const listed = new Map((best?.members ?? []).map((m) => [m.name, m]));
      const versionSource = g.clusterId === null ? null : versionSourceOf(statuses, leaderStatus);
      // what each member speaks: as a node of this build lists it, else as the best view lists it
      const listings = [versionSource, best].filter(Boolean).map((s) => new Map((Array.isArray(s.members) ? s.members : []).map((m) => [m.name, m])));
      const names = [...new Set([...g.nodes.map((n) => n.name), ...listed.keys()])].sort();
      const allShown = names.map((name) => {
        const here = model.nodes.get(name);
        // a name this cluster lists but that a node of another cluster answers to: not that node
        const node = here && clusterIdOf(here) === g.clusterId ? here : null;
        const s = node?.status ?? null;
        const m = listed.get(name) ?? null;
        const raft = node ? raftActorOf(node) : null;
        const { speaks, keyCommitted } = memberVersion(listings, { name, status: s });
        return {
          name,
          role: s?.paused ? 'paused' : node?.reachable === false ? 'unreachable' : s?.reachable ? (s.role ?? 'none') : raft ? (raft.states[0] ?? '').split('.').pop() : 'none',
          /** the cluster of the node on this bus that answers to this name, when it is another one */
          elsewhere: here && here !== node ? clusterIdOf(here) : null,
          voter: m ? m.voter : null,
          member: m !== null,
          term: s?.term ?? coreOf(raft)?.term ?? null,
          reachable: node ? node.reachable !== false && (node.reachable === true || m?.reachable === true) : (m?.reachable ?? false),
          matchIndex: m?.matchIndex ?? null,
          appliedIndex: s?.appliedIndex ?? null,
          commitIndex,
          generation: s?.generation ?? null,
          bus: s?.bus ?? null,
          phase: s?.phase ?? null,
          /** the demo paused it (SIGSTOP-like): it answers nothing until resumed */
          paused: s?.paused === true,
          /** the demo cut it off from the others: its traffic with them is lost both ways */
          cutOff: s?.cutOff === true,
          /** the protocol versions it speaks ({min, max}; null: unknown) */
          speaks,
          /** its member key is committed in the configuration (null: not reported, release 0.1.0 or not heard) */
          keyCommitted,
        };
      });
      // a node the configuration no longer lists (removed) and that no longer answers (stopped) is gone
      const members = best ? allShown.filter((m) => m.member || m.reachable) : allShown;
      const byMessage = new Map();
      for (const e of refusals) {
        if (g.clusterId !== null && (e.localClusterId === g.clusterId || e.remoteClusterId === g.clusterId)) byMessage.set(e.message, e);
      }
      // the latest of each distinct refusal, newest first
      const why = [...byMessage.values()].sort((a, b) => b.t - a.t).slice(0, 5);
      const anyMemberAnswers = g.clusterId !== null && statuses.some((s) => s.phase === 'member');
      return {
        clusterId: g.clusterId,
        leader: leaderStatus?.name ?? best?.leader ?? null,
        term: statuses.reduce((m, s) => Math.max(m, s.term ?? 0), 0),
        commitIndex,
        members,
        refusals: why,
        size: g.nodes.length,
        clusterVersion: clusterVersionShown(versionSource, members, anyMemberAnswers),
      };
    })
    .sort((a, b) => b.size - a.size || String(a.clusterId).localeCompare(String(b.clusterId)));
}
