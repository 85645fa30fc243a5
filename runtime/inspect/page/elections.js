// Elections from the nodes' own raft role charts: every role change of a node's `raftRole` actor is a
// segment of its lane, and the transition that caused it says why (`ev`: the event the chart was
// processing when its `always` edge fired). Pure and shared: the page runs it live and in replay,
// the tests run it in Node.
//
//   follower/learner → pre-candidate or candidate on a tick   election timeout (no leader heard)
//   follower → candidate on PEER_MESSAGE                      transfer (the leader's TimeoutNow)
//   leader → follower on a tick                               check-quorum step-down
//   a node that times out within 5 s of starting again         restart (a new process: its first snapshot),
//   before any leader was elected since
// An election opens at the first node that leaves follower while none is open (or at a leader's
// step-down) and closes when a node becomes leader; its duration is the time between.

export const RAFT_MACHINE = 'raftRole';
const MAX_SEGMENTS = 400;
const MAX_ELECTIONS = 200;

const roleOf = (stateId) => (typeof stateId === 'string' && stateId.startsWith(`${RAFT_MACHINE}.`) ? stateId.slice(RAFT_MACHINE.length + 1) : null);
const isTick = (ev) => typeof ev === 'string' && ev.startsWith('xstate.after.');
const seeking = (role) => role === 'preCandidate' || role === 'candidate';
const STEPPED_DOWN = 'stepped down: newer term seen';

export function createElections() {
  /** lanes: node → segments {role, term, from, to|null, cause|null} */
  // `open`: cluster id → its election under way; two clusters on one bus elect independently
  return { lanes: new Map(), elections: [], open: new Map(), lastStep: new Map(), fresh: new Map(), lastLeader: new Map() };
}

/** Why a node went from `from` to `to`, given the event its chart was processing. */
export function causeOf(from, to, ev, restarted) {
  if (restarted) return 'restart';
  if (seeking(to) && !seeking(from)) return to === 'candidate' && ev === 'PEER_MESSAGE' ? 'transfer' : isTick(ev) ? 'election timeout' : `${ev ?? 'unknown'}`;
  if (from === 'leader' && to !== 'leader') return isTick(ev) ? 'check-quorum step-down' : ev === 'PEER_MESSAGE' ? STEPPED_DOWN : `${ev ?? 'unknown'}`;
  return null;
}

function lane(el, node) {
  let segments = el.lanes.get(node);
  if (!segments) {
    segments = [];
    el.lanes.set(node, segments);
  }
  return segments;
}

function openElection(el, group, t, node, cause, term, previousLeader) {
  const election = { start: t, end: null, startedBy: node, cause, term, previousLeader, leader: null, durationMs: null };
  el.open.set(group, election);
  el.elections.push(election);
  if (el.elections.length > MAX_ELECTIONS) el.elections.shift();
}

/** a node that starts an election this soon after it started again, before any leader was elected since, does so because it restarted */
const RESTART_WINDOW_MS = 5000;

/** the role the chart last reported before the open 'unreachable' segment, if the lane has one */
function chartRoleBefore(segments) {
  for (let i = segments.length - 2; i >= 0; i--) if (segments[i].role !== 'unreachable') return segments[i].role;
  return null;
}

/** A raft chart of `node` started again (a new process), at `t`. */
export function noteRaftStarted(el, node, t) {
  if (el.lanes.get(node)?.length) el.fresh.set(node, t);
}

/** A step of the raft chart: remember what the chart was processing, for the state that follows. */
export function noteRaftStep(el, node, ev) {
  el.lastStep.set(node, ev);
}

/**
 * The raft chart of `node` is now in `stateId`; `core` is its published {term, leader} (or null);
 * `group` is its cluster id, so that two clusters on one bus do not mix their leaders.
 * `unreachable`: it stopped answering (true), or the demo paused it ('paused').
 */
export function noteRaftState(el, node, t, stateId, core, unreachable = false, group = null) {
  const term = typeof core?.term === 'number' ? core.term : null;
  const knownLeader = typeof core?.leader === 'string' ? core.leader : null;
  if (knownLeader) el.fresh.delete(node);
  const segments = lane(el, node);
  const last = segments[segments.length - 1];
  const role = unreachable ? 'unreachable' : roleOf(stateId);
  if (!role) return;
  if (last && last.to === null && last.role === role && (term === null || last.term === term)) {
    if (knownLeader) last.leader = knownLeader;
    return;
  }
  const from = last && last.to === null ? last.role : null;
  const restarted = el.fresh.has(node) && t - el.fresh.get(node) <= RESTART_WINDOW_MS && seeking(role);
  // a lane marked unreachable only because a status answer was late: the chart's own last role says why it moved
  const chartFrom = from === 'unreachable' ? chartRoleBefore(segments) : from;
  // no answer is no role change: the chart's last step (a tick, say) is not why it went silent
  const cause =
    role === 'unreachable' ? (unreachable === 'paused' ? 'paused' : null) : chartFrom === null ? (restarted ? 'restart' : null) : causeOf(chartFrom, role, el.lastStep.get(node), restarted);
  el.lastStep.delete(node);
  if (last && last.to === null) last.to = t;
  // the leader this node last knew: per node, so two clusters on one bus do not mix their leaders
  const previousLeader = from === 'leader' ? node : (last?.leader ?? el.lastLeader.get(group) ?? null);
  // while unreachable, the leader it knew is still the last it knew
  const leader = knownLeader ?? (role === 'leader' ? node : role === 'unreachable' ? (last?.leader ?? null) : null);
  segments.push({ role, term: term ?? last?.term ?? null, from: t, to: null, cause, leader });
  if (segments.length > MAX_SEGMENTS) segments.shift();
  if (role === 'unreachable') return;
  if (role === 'leader') {
    el.lastLeader.set(group, node);
    // whoever restarted before this leader was elected has had its election
    el.fresh.clear();
    const open = el.open.get(group);
    if (open) {
      open.end = t;
      open.leader = node;
      open.term = term ?? open.term;
      open.durationMs = t - open.start;
      el.open.delete(group);
    }
    return;
  }
  const open = el.open.get(group);
  if (open) {
    // each node's stream reaches the page on its own: a leader's step-down on a newer term may come
    // before the transition of the node that sought that term, which is the election's real start
    if (open.cause === STEPPED_DOWN && seeking(role) && cause !== null && cause !== STEPPED_DOWN) {
      open.cause = cause;
      open.startedBy = node;
      open.start = Math.min(open.start, t);
    }
    return;
  }
  const startsOne = (seeking(role) && from !== 'preCandidate' && from !== 'candidate') || (from === 'leader' && role !== 'leader');
  if (startsOne) openElection(el, group, t, node, cause ?? 'unknown', term, previousLeader);
}

/**
 * Elections as the page lists them, newest first. A leader a node announced before the page knew
 * that node id's name is kept as the id; `nameOf` names it when the list is read (the page learns
 * names from status answers and charts that may arrive after the leader was first announced).
 */
export function electionList(el, nameOf = (id) => id) {
  return [...el.elections].reverse().map((e) => (e.previousLeader === null ? e : { ...e, previousLeader: nameOf(e.previousLeader) }));
}
