// replicatedMachine(machine): a host XState machine as the replicated state. Each committed command
// is an event sent to an actor of the machine on every node, in log order, so every node holds the
// same statechart state; the durable and transferable form is the actor's persisted snapshot.
import {
  type AnyActorRef,
  type AnyStateMachine,
  type EventFromLogic,
  type InputFrom,
  type SnapshotFrom,
  createActor,
} from 'xstate';
import { conclaveError } from '../errors.ts';
import type { ReplicatedState } from './host.ts';

/** What a command's proposer gets back (the default `result`). */
export type MachineApplyResult =
  | { ok: true; handled: boolean; value: unknown; context: unknown }
  | { ok: false; error: string; value: unknown };

export interface ReplicatedMachineOptions<TMachine extends AnyStateMachine, TQuery = unknown, TQueryResult = unknown> {
  /** the machine's input when the state starts empty (restore(null)) */
  input?: InputFrom<TMachine>;
  /** answer a read from the machine's snapshot; default `{ value, context }` */
  query?: (snapshot: SnapshotFrom<TMachine>, query: TQuery) => TQueryResult;
}

/**
 * Make an XState machine the replicated state of a controller: `startController({ state:
 * replicatedMachine(machine) })`. The machine must be deterministic: events only — no delayed
 * transitions (`after`), no invoked or spawned actors, no randomness or clock in its actions
 * (every node runs them). A command that is not an event, or that the machine does not handle in its
 * current state, is answered (`handled: false` or `ok: false`) the same way on every node.
 */
export function replicatedMachine<TMachine extends AnyStateMachine, TQuery = unknown, TQueryResult = { value: unknown; context: unknown }>(
  machine: TMachine,
  opts: ReplicatedMachineOptions<TMachine, TQuery, TQueryResult> = {},
): ReplicatedState<EventFromLogic<TMachine>, MachineApplyResult, TQuery, TQueryResult, unknown> {
  checkDeterministic(machine);
  let actor: AnyActorRef | null = null;
  /** an error raised by the machine's own actions; the actor is stopped by XState (status 'error') */
  let machineError: string | null = null;

  const start = (snapshot: unknown): void => {
    actor?.stop();
    machineError = null;
    const next = snapshot === null ? createActor(machine, { input: opts.input }) : createActor(machine, { snapshot: snapshot as never, input: opts.input });
    // an action that throws puts the actor in error on every node alike: observe it, never crash
    next.subscribe({
      error: (err: unknown) => {
        machineError = err instanceof Error ? err.message : String(err);
      },
    });
    next.start();
    actor = next;
  };

  const current = (): AnyActorRef => {
    if (!actor) start(null);
    return actor!;
  };

  return {
    apply(command) {
      const a = current();
      const snapshot = a.getSnapshot();
      if (machineError !== null || snapshot.status === 'error') {
        return { ok: false, error: `the machine stopped on an error: ${machineError ?? 'unknown'}`, value: snapshot.value };
      }
      const event = command as unknown;
      if (event === null || typeof event !== 'object' || Array.isArray(event) || typeof (event as { type?: unknown }).type !== 'string') {
        return { ok: false, error: 'a command must be an event: an object with a string "type"', value: snapshot.value };
      }
      const type = (event as { type: string }).type;
      if (type.startsWith('xstate.')) return { ok: false, error: `event type ${JSON.stringify(type)} is reserved by XState`, value: snapshot.value };
      if (snapshot.status !== 'active') return { ok: false, error: `the machine is ${snapshot.status} (it reached a final state)`, value: snapshot.value };
      const handled = snapshot.can(event as never);
      if (handled) a.send(event as never);
      const after = a.getSnapshot();
      if (machineError !== null) return { ok: false, error: `the machine stopped on an error: ${machineError}`, value: after.value };
      return { ok: true, handled, value: after.value, context: after.context };
    },
    query(query) {
      const snapshot = current().getSnapshot() as SnapshotFrom<TMachine>;
      if (opts.query) return opts.query(snapshot, query);
      return { value: (snapshot as { value: unknown }).value, context: (snapshot as { context: unknown }).context } as TQueryResult;
    },
    snapshot() {
      return current().getPersistedSnapshot();
    },
    restore(snapshot) {
      start(snapshot ?? null);
    },
  };
}

/** refuse what cannot run the same on every node: delayed transitions and invoked actors */
function checkDeterministic(machine: AnyStateMachine): void {
  const idMap = (machine as unknown as { idMap?: Map<string, { id: string; after?: unknown[]; invoke?: unknown[] }> }).idMap;
  if (!(idMap instanceof Map)) return;
  for (const node of idMap.values()) {
    if ((node.after?.length ?? 0) > 0) {
      throw conclaveError('CONFIG', `replicatedMachine(${machine.id}): state ${node.id} has a delayed transition (after); timers fire at different moments on each node, so a replicated machine must move on events only — propose a timeout event instead`);
    }
    if ((node.invoke?.length ?? 0) > 0) {
      throw conclaveError('CONFIG', `replicatedMachine(${machine.id}): state ${node.id} invokes an actor; invoked actors run on every node at different moments — keep side effects outside and propose their outcomes as events`);
    }
  }
}
