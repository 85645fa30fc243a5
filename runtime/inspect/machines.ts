// The statecharts as data: one walk over a machine's state nodes gives the definition the page lays
// out with elkjs and that `conclave machines export` prints as JSON (or, drawn by diagrams.ts, as
// Mermaid or DOT).
// Walks `machine.root` instead of `machine.toJSON()`, which omits `always` transitions (the raft
// role chart changes role through `always`). Guards, actions, delays and invoked actors are named
// in the machines (setup()), so the diagram reads as the spec.
import type { AnyStateMachine } from 'xstate';
import { bootstrapMachine } from '../../machines/bootstrap/machine.ts';
import { joinMachine } from '../../machines/join/machine.ts';
import { membershipMachine } from '../../machines/membership/machine.ts';
import { raftRoleMachine } from '../../machines/raft/roleMachine.ts';

/** The machines a controller runs, by export name. */
export const MACHINES: ReadonlyArray<{ name: string; title: string; machine: AnyStateMachine }> = [
  { name: 'bootstrap', title: 'Bootstrap: how a node comes to belong to a cluster', machine: bootstrapMachine },
  { name: 'raft', title: 'Raft role chart', machine: raftRoleMachine },
  { name: 'membership', title: 'Membership (leader side): offer, learner catch-up, promotion, removal', machine: membershipMachine },
  { name: 'join', title: 'Join (node side): check the offer, record the contact, accept', machine: joinMachine },
];

export interface StateDef {
  /** the state node id, e.g. `bootstrap.member` (what inspection events report as active) */
  id: string;
  key: string;
  parent: string | null;
  type: string;
  /** the initial child of a compound state */
  initial: string | null;
  invoke: string[];
  entry: string[];
  exit: string[];
  description: string | null;
}

export interface TransitionDef {
  /** `source|eventType|targets`: what the publisher reports when the transition fires */
  key: string;
  source: string;
  targets: string[];
  eventType: string;
  kind: 'on' | 'always' | 'after' | 'done' | 'error';
  /** what the diagram shows: the event (or `after DELAY`, `done SRC`), then `[guard]` */
  label: string;
  guard: string | null;
  actions: string[];
  reenter: boolean;
}

export interface MachineDef {
  name: string;
  title: string;
  /** the machine id: inspection events name it as the actor's machine */
  id: string;
  initial: string | null;
  states: StateDef[];
  /** transitions with a target */
  transitions: TransitionDef[];
  /** targetless transitions (actions only), e.g. the raft chart's PEER_MESSAGE on the root */
  internal: TransitionDef[];
}

interface AnyStateNodeLike {
  id: string;
  key: string;
  type: string;
  description?: string;
  parent?: AnyStateNodeLike;
  states: Record<string, AnyStateNodeLike>;
  initial?: { target: ReadonlyArray<{ id: string }> };
  invoke: ReadonlyArray<{ id: string; src: unknown }>;
  entry: readonly unknown[];
  exit: readonly unknown[];
  transitions: Map<string, ReadonlyArray<AnyTransitionLike>>;
  always?: ReadonlyArray<AnyTransitionLike>;
  after: ReadonlyArray<AnyTransitionLike & { delay: unknown }>;
}

interface AnyTransitionLike {
  eventType: string;
  target?: ReadonlyArray<{ id: string }>;
  source: { id: string };
  guard?: unknown;
  actions: readonly unknown[];
  reenter?: boolean;
  delay?: unknown;
}

/** The key both the definition and the publisher give a transition. */
export function transitionKey(sourceId: string, eventType: string, targetIds: readonly string[]): string {
  return `${sourceId}|${eventType}|${targetIds.join(',')}`;
}

function nameOf(thing: unknown): string {
  if (typeof thing === 'string') return thing;
  if (typeof thing === 'function') return thing.name || 'inline';
  if (thing && typeof thing === 'object' && 'type' in thing) {
    const t = thing as { type: unknown; params?: unknown };
    const type = nameOf(t.type);
    // static params are part of the name (coreRoleIs(role=leader)); dynamic ones are not knowable
    if (t.params && typeof t.params === 'object') {
      const parts = Object.entries(t.params as Record<string, unknown>).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
      return parts.length ? `${type}(${parts.join(', ')})` : type;
    }
    return type;
  }
  return 'inline';
}

/** XState's own actions (the raise/cancel behind `after`) are not part of the chart's story. */
function isUserAction(action: unknown): boolean {
  const type = action && (typeof action === 'function' || typeof action === 'object') ? (action as { type?: unknown }).type : undefined;
  return !(typeof type === 'string' && type.startsWith('xstate.'));
}

function guardName(guard: unknown): string | null {
  if (guard === undefined || guard === null) return null;
  return nameOf(guard);
}

function describe(node: AnyStateNodeLike, t: AnyTransitionLike, afterDelay?: unknown): Omit<TransitionDef, 'key' | 'label'> & { label?: string } {
  const targets = (t.target ?? []).map((s) => s.id);
  const guard = guardName(t.guard);
  const actions = t.actions.map(nameOf);
  let kind: TransitionDef['kind'] = 'on';
  let event = t.eventType;
  if (t.eventType === '') {
    kind = 'always';
    event = '';
  } else if (afterDelay !== undefined) {
    kind = 'after';
    event = `after ${typeof afterDelay === 'number' ? `${afterDelay}ms` : nameOf(afterDelay)}`;
  } else if (t.eventType.startsWith('xstate.done.actor.') || t.eventType.startsWith('xstate.error.actor.')) {
    const isDone = t.eventType.startsWith('xstate.done.');
    kind = isDone ? 'done' : 'error';
    const invokeId = t.eventType.slice(isDone ? 'xstate.done.actor.'.length : 'xstate.error.actor.'.length);
    const inv = node.invoke.find((i) => i.id === invokeId);
    event = `${isDone ? 'done' : 'error'} ${inv ? nameOf(inv.src) : invokeId}`;
  }
  const label = [event, guard ? `[${guard}]` : ''].filter(Boolean).join(' ');
  return { source: node.id, targets, eventType: t.eventType, kind, guard, actions, reenter: t.reenter === true, label };
}

/** The definition of one machine, from its state nodes. */
export function machineDefinition(machine: AnyStateMachine, name = machine.id, title = name): MachineDef {
  const states: StateDef[] = [];
  const transitions: TransitionDef[] = [];
  const internal: TransitionDef[] = [];
  const add = (d: ReturnType<typeof describe>) => {
    const def: TransitionDef = { ...d, label: d.label ?? d.eventType, key: transitionKey(d.source, d.eventType, d.targets) };
    (def.targets.length ? transitions : internal).push(def);
  };
  const walk = (node: AnyStateNodeLike, isRoot: boolean) => {
    if (!isRoot) {
      const initial = node.initial?.target[0]?.id ?? null;
      states.push({
        id: node.id,
        key: node.key,
        parent: node.parent?.parent ? node.parent.id : null,
        type: node.type,
        initial: Object.keys(node.states).length ? initial : null,
        invoke: node.invoke.map((i) => nameOf(i.src)),
        entry: node.entry.filter(isUserAction).map(nameOf),
        exit: node.exit.filter(isUserAction).map(nameOf),
        description: node.description ?? null,
      });
    }
    const afterEvents = new Map(node.after.map((a) => [a.eventType, a.delay]));
    for (const t of node.always ?? []) add(describe(node, t));
    for (const [eventType, list] of node.transitions) {
      for (const t of list) add(describe(node, t, afterEvents.has(eventType) ? afterEvents.get(eventType) : undefined));
    }
    for (const child of Object.values(node.states)) walk(child, false);
  };
  const root = machine.root as unknown as AnyStateNodeLike;
  walk(root, true);
  return { name, title, id: machine.id, initial: root.initial?.target[0]?.id ?? null, states, transitions, internal };
}

export function allMachineDefinitions(): MachineDef[] {
  return MACHINES.map((m) => machineDefinition(m.machine, m.name, m.title));
}
