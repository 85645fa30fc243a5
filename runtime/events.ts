// The events a host application can subscribe to with `controller.on(event, listener)`.
import type { Phase } from '../machines/bootstrap/machine.ts';
import { conclaveError } from './errors.ts';
import type { Logger } from './log/logger.ts';

export interface ControllerEvents {
  /** a leader was elected (or lost: `leader` null), as this node sees it */
  leaderChanged: { leader: string | null; term: number };
  /** the applied configuration changed (a member added, promoted or removed; a snapshot installed) */
  membershipChanged: { members: Array<{ name: string; nodeId: string; voter: boolean }> };
  /** the bootstrap phase changed: uninitialized, bootstrapping, joining, member, removed, failed */
  phaseChanged: { phase: Phase };
  /** a committed command was applied on this node (every node applies every command, in log order) */
  applied: { index: number; command: unknown; result: unknown };
}

/** A refusal the join rule made (a foreign peer message, join offer or request). */
export interface Refusal {
  /** 'foreign-cluster' for a dropped peer message; the handshake step otherwise */
  reason: string;
  /** the peer's node name */
  from: string;
  localClusterId: string | null;
  remoteClusterId: string | null;
  /** the one-line refusal message, naming both ids */
  message: string;
}

/** what a member runtime reports, turned into events by ControllerEventHub.memberEvents() */
export interface MemberEvents {
  /** asked once per applied batch: the per-entry `applied` events are built only while someone listens */
  wantsApplied(): boolean;
  applied(index: number, command: unknown, result: unknown): void;
  leaderChanged(leader: string | null, term: number): void;
  membershipChanged(members: Array<{ name: string; nodeId: string; voter: boolean }>): void;
}

export type ControllerEventName = keyof ControllerEvents;
export type ControllerListener<E extends ControllerEventName> = (event: ControllerEvents[E]) => void;

const NAMES: readonly ControllerEventName[] = ['leaderChanged', 'membershipChanged', 'phaseChanged', 'applied'];

/**
 * Listeners are called synchronously, on the path that produced the event (the `applied` ones inside
 * the apply loop): keep them short. A listener that throws is logged and does not disturb the others.
 */
export class ControllerEventHub {
  private readonly listeners: { [E in ControllerEventName]: Set<ControllerListener<E>> } = {
    leaderChanged: new Set(),
    membershipChanged: new Set(),
    phaseChanged: new Set(),
    applied: new Set(),
  };

  constructor(private readonly log: Logger) {}

  on<E extends ControllerEventName>(event: E, listener: ControllerListener<E>): () => void {
    if (!NAMES.includes(event)) {
      throw conclaveError('USAGE', `controller.on: unknown event ${JSON.stringify(event)}; the events are ${NAMES.join(', ')}`);
    }
    if (typeof listener !== 'function') throw conclaveError('USAGE', `controller.on(${JSON.stringify(event)}, listener): the listener must be a function`);
    const set = this.listeners[event] as Set<ControllerListener<E>>;
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  has(event: ControllerEventName): boolean {
    return this.listeners[event].size > 0;
  }

  emit<E extends ControllerEventName>(event: E, payload: ControllerEvents[E]): void {
    const set = this.listeners[event] as Set<ControllerListener<E>>;
    if (set.size === 0) return;
    for (const listener of set) {
      try {
        listener(payload);
      } catch (err) {
        this.log.error({ err, event }, `a ${event} listener threw; the other listeners still ran`);
      }
    }
  }

  /** the member runtime's side: what it reports, turned into events */
  memberEvents(): MemberEvents {
    return {
      wantsApplied: () => this.listeners.applied.size > 0,
      applied: (index, command, result) => this.emit('applied', { index, command, result }),
      leaderChanged: (leader, term) => this.emit('leaderChanged', { leader, term }),
      membershipChanged: (members) => this.emit('membershipChanged', { members }),
    };
  }
}
