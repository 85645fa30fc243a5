// XState inspection events → the compact, bounded form published on the bus. Context is
// summarized (primitives, short strings, sizes of collections, class names), never copied whole:
// the raft chart's context holds the whole consensus core.
import type { ActorRefLike, AnyEventObject, InspectionEvent } from 'xstate';
import { transitionKey } from './machines.ts';
import type { ActorState, InspectEvent } from './protocol.ts';

const MAX_KEYS = 12;
const MAX_STRING = 120;
const MAX_EDGES = 16;

function shortString(s: string): string {
  return s.length > MAX_STRING ? `${s.slice(0, MAX_STRING - 1)}…` : s;
}

/** The raft core's cheap accessors: its role, term and leader are what a timeline needs. */
function raftCoreSummary(value: object): Record<string, unknown> | null {
  const core = value as { currentRole?: unknown; currentTerm?: unknown; leader?: unknown };
  if (typeof core.currentRole !== 'string' || typeof core.currentTerm !== 'number') return null;
  return { role: core.currentRole, term: core.currentTerm, leader: typeof core.leader === 'string' ? core.leader : null };
}

function summarizeValue(value: unknown, depth: number): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return shortString(value);
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return `[function ${value.name || 'anonymous'}]`;
  if (Array.isArray(value)) return `[${value.length} items]`;
  if (value instanceof Map || value instanceof Set) return `[${value.constructor.name} of ${value.size}]`;
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return raftCoreSummary(value) ?? `[${(value as object).constructor?.name ?? 'object'}]`;
    if (depth <= 0) return '{…}';
    return summarizeContext(value as Record<string, unknown>, depth - 1);
  }
  return String(value);
}

/** A bounded, JSON-safe summary of an actor's context. */
export function summarizeContext(ctx: unknown, depth = 1): Record<string, unknown> | undefined {
  if (!ctx || typeof ctx !== 'object' || Array.isArray(ctx)) return undefined;
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const [key, value] of Object.entries(ctx)) {
    if (n++ >= MAX_KEYS) {
      out['…'] = `${Object.keys(ctx).length - MAX_KEYS} more keys`;
      break;
    }
    out[key] = summarizeValue(value, depth);
  }
  return out;
}

interface ActorLogicLike {
  id?: unknown;
  root?: unknown;
}

/** The machine id of an actor (`bootstrap`, `raftRole`), or null for promise/callback actors. */
export function machineIdOf(ref: ActorRefLike): string | null {
  const logic = (ref as { logic?: ActorLogicLike }).logic;
  return logic?.root && typeof logic.id === 'string' ? logic.id : null;
}

/** The active state node ids of a state value: `leader` → [`raftRole.leader`]; nested values too. */
export function activeStateIds(machineId: string, value: unknown): string[] {
  const ids: string[] = [];
  const walk = (prefix: string, v: unknown) => {
    if (typeof v === 'string') ids.push(`${prefix}.${v}`);
    else if (v && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        ids.push(`${prefix}.${k}`);
        walk(`${prefix}.${k}`, child);
      }
    }
  };
  walk(machineId, value);
  return ids;
}

interface SnapshotLike {
  status?: string;
  value?: unknown;
  context?: unknown;
}

/** The actor's id (`bootstrap:n1`, `raft:n1`, an invoke id), else its session id. */
export function actorIdOf(ref: ActorRefLike): string {
  const id = (ref as { id?: unknown }).id;
  return typeof id === 'string' ? id : ref.sessionId;
}

export function actorState(ref: ActorRefLike, snapshot: SnapshotLike): ActorState {
  const m = machineIdOf(ref);
  const state: ActorState = { a: actorIdOf(ref), m, states: m ? activeStateIds(m, snapshot.value) : [], status: snapshot.status ?? 'active' };
  const ctx = m ? summarizeContext(snapshot.context) : undefined;
  if (ctx) state.ctx = ctx;
  return state;
}

/** Stable key of a state for change detection (context deliberately left out: it changes every tick). */
export function stateKey(state: ActorState): string {
  return `${state.status}|${state.states.join(',')}`;
}

function eventType(event: AnyEventObject | undefined): string {
  return shortString(typeof event?.type === 'string' ? event.type : 'unknown');
}

/**
 * Compact one inspection event; null when it is not published (actions; snapshots that did not
 * change the state; microsteps without a target).
 */
export function compactEvent(event: InspectionEvent, now: number, lastStates: Map<ActorRefLike, string>): InspectEvent | null {
  switch (event.type) {
    case '@xstate.snapshot': {
      const state = actorState(event.actorRef, event.snapshot as SnapshotLike);
      const key = stateKey(state);
      if (lastStates.get(event.actorRef) === key) return null;
      lastStates.set(event.actorRef, key);
      if (state.status !== 'active') lastStates.delete(event.actorRef);
      return { k: 'state', t: now, ...state };
    }
    case '@xstate.event':
      return { k: 'event', t: now, a: actorIdOf(event.actorRef), type: eventType(event.event), src: event.sourceRef ? actorIdOf(event.sourceRef) : null, n: 1 };
    case '@xstate.microstep': {
      const edges: string[] = [];
      for (const t of event._transitions) {
        if (!t.target?.length) continue;
        edges.push(transitionKey(t.source.id, t.eventType, t.target.map((s) => s.id)));
        if (edges.length >= MAX_EDGES) break;
      }
      return edges.length ? { k: 'step', t: now, a: actorIdOf(event.actorRef), edges, n: 1, ev: eventType(event.event) } : null;
    }
    case '@xstate.actor': {
      const parent = (event.actorRef as { _parent?: { id?: string } })._parent?.id ?? null;
      return { k: 'actor', t: now, a: actorIdOf(event.actorRef), m: machineIdOf(event.actorRef), parent };
    }
    default:
      return null;
  }
}

/** raft messages looked at per delivered batch; the rest of a huge batch is counted, not described */
const MAX_MESSAGES_PER_EVENT = 64;

/** a reply's outcome: a vote granted, an append accepted (undefined for anything that is not a reply with one) */
function outcomeOf(m: { type?: unknown; granted?: unknown; reject?: unknown }): boolean | undefined {
  if ((m.type === 'vote-response' || m.type === 'pre-vote-response') && typeof m.granted === 'boolean') return m.granted;
  if (m.type === 'append-response' && typeof m.reject === 'boolean') return !m.reject;
  return undefined;
}

/**
 * The raft messages an actor was handed (a `PEER_MESSAGE` event: `messages`, each with `type`, `from`,
 * `to` and `term`), as `msg` events for the sequence view; none for any other event. An append
 * says how many entries it carried (`entries`), a vote or append reply whether it was granted or
 * accepted (`ok`): what a newcomer needs to follow an append round and a vote.
 */
export function raftMessageEvents(event: InspectionEvent, now: number): Array<Extract<InspectEvent, { k: 'msg' }>> {
  if (event.type !== '@xstate.event' || event.event?.type !== 'PEER_MESSAGE') return [];
  const messages = (event.event as { messages?: unknown }).messages;
  if (!Array.isArray(messages)) return [];
  const a = actorIdOf(event.actorRef);
  const out: Array<Extract<InspectEvent, { k: 'msg' }>> = [];
  for (const m of messages.slice(0, MAX_MESSAGES_PER_EVENT)) {
    const message = (m ?? {}) as { type?: unknown; from?: unknown; to?: unknown; term?: unknown; entries?: unknown; granted?: unknown; reject?: unknown };
    const { type, from, to, term } = message;
    if (typeof type !== 'string' || typeof from !== 'string' || typeof to !== 'string') continue;
    const event: Extract<InspectEvent, { k: 'msg' }> = { k: 'msg', t: now, a, type: shortString(type), from: shortString(from), to: shortString(to), term: typeof term === 'number' ? term : null, n: 1 };
    if (type === 'append' && Array.isArray(message.entries)) event.entries = message.entries.length;
    const ok = outcomeOf(message);
    if (ok !== undefined) event.ok = ok;
    out.push(event);
  }
  return out;
}
