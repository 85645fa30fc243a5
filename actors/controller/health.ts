// Health: a member without a leader for longer than `warnWhenLeaderlessForMs` warns, and keeps
// warning at that period until a leader is back. Driven by the controller's own events (leader and
// phase changes), with the wait as a delayed transition: nothing polls.
import { type Actor, assign, createActor, setup } from 'xstate';
import type { ControllerContext } from './context.ts';

const DEFAULT_LEADERLESS_WARN_MS = 10_000;

/** `at`: when this node saw no leader, on the controller's clock */
type HealthEvent = { type: 'LEADERLESS'; at: number } | { type: 'LEADER'; leader: string } | { type: 'NOT_A_MEMBER' };

interface HealthContext {
  warnAfterMs: number;
  /** when this node last saw no leader (epoch ms), while it lasts */
  since: number;
  warned: boolean;
}

/** has a leader (or is no member) ⇄ leaderless, warning every `warnAfter` while it lasts */
export const healthMachine = setup({
  types: { context: {} as HealthContext, events: {} as HealthEvent, input: {} as { warnAfterMs: number } },
  actions: {
    startLeaderless: assign((_, { at }: { at: number }) => ({ since: at, warned: false })),
    markWarned: assign({ warned: true }),
    /** provided by the controller: the warning line */
    warnLeaderless: (_, _params: { since: number }) => {},
    /** provided by the controller: the "leader is back" line */
    reportBack: (_, _params: { leader: string; since: number }) => {},
  },
  guards: {
    warned: ({ context }) => context.warned,
  },
  delays: {
    warnAfter: ({ context }) => context.warnAfterMs,
  },
}).createMachine({
  id: 'health',
  context: ({ input }) => ({ warnAfterMs: input.warnAfterMs, since: 0, warned: false }),
  initial: 'quiet',
  states: {
    quiet: {
      on: { LEADERLESS: { target: 'leaderless', actions: { type: 'startLeaderless', params: ({ event }) => ({ at: event.at }) } } },
    },
    leaderless: {
      after: {
        warnAfter: { target: 'leaderless', reenter: true, actions: ['markWarned', { type: 'warnLeaderless', params: ({ context }) => ({ since: context.since }) }] },
      },
      on: {
        LEADER: [
          { guard: 'warned', target: 'quiet', actions: { type: 'reportBack', params: ({ context, event }) => ({ leader: event.leader, since: context.since }) } },
          { target: 'quiet' },
        ],
        NOT_A_MEMBER: 'quiet',
      },
    },
  },
});

/** start watching; returns the function that stops */
export function watchHealth(ctx: ControllerContext): () => void {
  const log = ctx.logFor('health');
  const actor: Actor<typeof healthMachine> = createActor(
    healthMachine.provide({
      actions: {
        warnLeaderless: (_, { since }) => {
          const s = ctx.member()?.status();
          const leaderlessMs = ctx.clock.now() - since;
          const unreachable = (s?.members ?? []).filter((m) => !m.reachable).map((m) => m.name);
          log.warn(
            { leaderlessMs, term: s?.term ?? 0, unreachable },
            `no leader for ${(leaderlessMs / 1000).toFixed(1)} s (term ${s?.term ?? 0}); unreachable members: ${unreachable.join(', ') || 'none'} — a majority of voters must be up and connected`,
          );
        },
        reportBack: (_, { leader, since }) => {
          const leaderlessMs = ctx.clock.now() - since;
          log.info({ leader, leaderlessMs }, `leader ${leader} is back after ${leaderlessMs} ms without one`);
        },
      },
    }),
    { id: `health:${ctx.name}`, input: { warnAfterMs: ctx.opts.warnWhenLeaderlessForMs ?? DEFAULT_LEADERLESS_WARN_MS }, clock: ctx.clock },
  );
  const check = (leader: string | null) => {
    if (ctx.phase() !== 'member') actor.send({ type: 'NOT_A_MEMBER' });
    else if (leader === null) actor.send({ type: 'LEADERLESS', at: ctx.clock.now() });
    else actor.send({ type: 'LEADER', leader });
  };
  const offLeader = ctx.events.on('leaderChanged', ({ leader }) => check(leader));
  const offPhase = ctx.events.on('phaseChanged', () => check(ctx.member()?.status().leader ?? null));
  actor.start();
  check(ctx.member()?.status().leader ?? null);
  return () => {
    offLeader();
    offPhase();
    actor.stop();
  };
}
