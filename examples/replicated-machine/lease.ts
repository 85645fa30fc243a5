// A lease (a lock with an expiry and a fencing token), as a plain XState machine. Replicated with
// `replicatedMachine(leaseMachine)`, every node of the cluster holds the same lease state.
// Deterministic by construction: time comes in the events (the proposer's clock), never from the
// machine itself, and there are no timers (`after`) or invoked actors.
import { assign, setup } from 'xstate';

export interface LeaseContext {
  holder: string | null;
  /** increases with every grant: a resource can refuse writes from an older holder */
  fencing: number;
  expiresAt: number;
}

export type LeaseEvent =
  | { type: 'acquire'; owner: string; now: number; ttlMs: number }
  | { type: 'renew'; owner: string; now: number; ttlMs: number }
  | { type: 'release'; owner: string }
  | { type: 'expire'; now: number };

export const leaseMachine = setup({
  types: { context: {} as LeaseContext, events: {} as LeaseEvent },
  guards: {
    isHolder: ({ context, event }) => 'owner' in event && event.owner === context.holder,
    hasExpired: ({ context, event }) => 'now' in event && event.now >= context.expiresAt,
    isHolderInTime: ({ context, event }) => event.type === 'renew' && event.owner === context.holder && event.now < context.expiresAt,
  },
  actions: {
    grant: assign(({ context, event }) =>
      event.type === 'acquire' ? { holder: event.owner, fencing: context.fencing + 1, expiresAt: event.now + event.ttlMs } : {},
    ),
    extend: assign(({ event }) => (event.type === 'renew' ? { expiresAt: event.now + event.ttlMs } : {})),
    clear: assign({ holder: null, expiresAt: 0 }),
  },
}).createMachine({
  id: 'lease',
  context: { holder: null, fencing: 0, expiresAt: 0 },
  initial: 'free',
  states: {
    free: {
      on: { acquire: { target: 'held', actions: 'grant' } },
    },
    held: {
      on: {
        // an expired lease may be taken over by anyone
        acquire: { guard: 'hasExpired', target: 'held', reenter: true, actions: 'grant' },
        renew: { guard: 'isHolderInTime', actions: 'extend' },
        release: { guard: 'isHolder', target: 'free', actions: 'clear' },
        expire: { guard: 'hasExpired', target: 'free', actions: 'clear' },
      },
    },
  },
});
