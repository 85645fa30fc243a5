// The raft role chart: the diagram an operator reads (follower / pre-candidate / candidate / leader /
// learner) over the pure core that does the work. The clock is a named delayed transition that
// re-enters the current state every tick, so SimulatedClock drives it in tests. One machine event
// per batch of messages, never per entry: the log stays in the core, outside machine context.
import { assign, setup } from 'xstate';
import type { ProposeResult, RaftCore, TransferResult } from './core.ts';
import type { RaftMessage } from './messages.ts';
import type { EntryType, PeerId, Role } from './types.ts';

export interface RaftRoleInput {
  core: RaftCore;
  /** milliseconds per raft tick (heartbeat and election timeouts are counted in ticks) */
  tickMs: number;
}

export interface RaftRoleContext {
  core: RaftCore;
  tickMs: number;
  lastProposal: ProposeResult | null;
  lastTransfer: TransferResult | null;
}

export type RaftRoleEvent =
  | { type: 'PEER_MESSAGE'; messages: readonly RaftMessage[] }
  | { type: 'PROPOSE'; items: ReadonlyArray<{ type: EntryType; data: unknown }> }
  | { type: 'READ_INDEX'; requestId: string }
  | { type: 'TRANSFER'; to?: PeerId };

export const raftRoleMachine = setup({
  types: {
    context: {} as RaftRoleContext,
    events: {} as RaftRoleEvent,
    input: {} as RaftRoleInput,
  },
  actions: {
    tickCore: ({ context }) => context.core.tick(),
    stepMessages: ({ context, event }) => {
      if (event.type !== 'PEER_MESSAGE') return;
      for (const message of event.messages) context.core.step(message);
    },
    propose: assign({
      lastProposal: ({ context, event }) => (event.type === 'PROPOSE' ? context.core.propose(event.items) : context.lastProposal),
    }),
    readIndex: ({ context, event }) => {
      if (event.type === 'READ_INDEX') context.core.readIndex(event.requestId);
    },
    transferLeadership: assign({
      lastTransfer: ({ context, event }) => (event.type === 'TRANSFER' ? context.core.transferLeadership(event.to) : context.lastTransfer),
    }),
    /** the host persists, sends and applies what the core has ready (supplied via .provide()) */
    emitReady: () => {},
  },
  guards: {
    coreRoleIs: ({ context }, params: { role: Role }) => context.core.currentRole === params.role,
  },
  delays: {
    tickInterval: ({ context }) => context.tickMs,
  },
}).createMachine({
  id: 'raftRole',
  context: ({ input }) => ({ core: input.core, tickMs: input.tickMs, lastProposal: null, lastTransfer: null }),
  initial: 'follower',
  on: {
    PEER_MESSAGE: { actions: ['stepMessages', 'emitReady'] },
    PROPOSE: { actions: ['propose', 'emitReady'] },
    READ_INDEX: { actions: ['readIndex', 'emitReady'] },
    TRANSFER: { actions: ['transferLeadership', 'emitReady'] },
  },
  states: {
    follower: {
      always: [
        { guard: { type: 'coreRoleIs', params: { role: 'pre-candidate' } }, target: 'preCandidate' },
        { guard: { type: 'coreRoleIs', params: { role: 'candidate' } }, target: 'candidate' },
        { guard: { type: 'coreRoleIs', params: { role: 'leader' } }, target: 'leader' },
        { guard: { type: 'coreRoleIs', params: { role: 'learner' } }, target: 'learner' },
      ],
      after: { tickInterval: { target: 'follower', reenter: true, actions: ['tickCore', 'emitReady'] } },
    },
    preCandidate: {
      always: [
        { guard: { type: 'coreRoleIs', params: { role: 'follower' } }, target: 'follower' },
        { guard: { type: 'coreRoleIs', params: { role: 'candidate' } }, target: 'candidate' },
        { guard: { type: 'coreRoleIs', params: { role: 'leader' } }, target: 'leader' },
        { guard: { type: 'coreRoleIs', params: { role: 'learner' } }, target: 'learner' },
      ],
      after: { tickInterval: { target: 'preCandidate', reenter: true, actions: ['tickCore', 'emitReady'] } },
    },
    candidate: {
      always: [
        { guard: { type: 'coreRoleIs', params: { role: 'follower' } }, target: 'follower' },
        { guard: { type: 'coreRoleIs', params: { role: 'pre-candidate' } }, target: 'preCandidate' },
        { guard: { type: 'coreRoleIs', params: { role: 'leader' } }, target: 'leader' },
        { guard: { type: 'coreRoleIs', params: { role: 'learner' } }, target: 'learner' },
      ],
      after: { tickInterval: { target: 'candidate', reenter: true, actions: ['tickCore', 'emitReady'] } },
    },
    leader: {
      always: [
        { guard: { type: 'coreRoleIs', params: { role: 'follower' } }, target: 'follower' },
        { guard: { type: 'coreRoleIs', params: { role: 'learner' } }, target: 'learner' },
      ],
      after: { tickInterval: { target: 'leader', reenter: true, actions: ['tickCore', 'emitReady'] } },
    },
    learner: {
      always: [
        { guard: { type: 'coreRoleIs', params: { role: 'follower' } }, target: 'follower' },
        { guard: { type: 'coreRoleIs', params: { role: 'pre-candidate' } }, target: 'preCandidate' },
        { guard: { type: 'coreRoleIs', params: { role: 'candidate' } }, target: 'candidate' },
      ],
      after: { tickInterval: { target: 'learner', reenter: true, actions: ['tickCore', 'emitReady'] } },
    },
  },
});

/** the chart's state names, by core role */
export const ROLE_STATE: Record<Role, 'follower' | 'preCandidate' | 'candidate' | 'leader' | 'learner'> = {
  follower: 'follower',
  'pre-candidate': 'preCandidate',
  candidate: 'candidate',
  leader: 'leader',
  learner: 'learner',
};
