// initialMembers: while this node leads, add every name still pending in the replicated
// configuration (the bootstrapping node's initialMembers, cleared name by name as each is added, so
// a member removed later is not added back), as soon as each answers, retrying each name with the
// shared backoff for as long as it takes; progress is logged every ~10 s. Runs on every member,
// acts on the leader. It looks again when leadership or the configuration changes, or a retry is due.
import { type Actor, assign, createActor, fromPromise, setup } from 'xstate';
import { backoffDelay } from '../../machines/backoff.ts';
import type { ControllerContext } from './context.ts';
import type { MembershipOps } from './membership.ts';

const INITIAL_MEMBERS = {
  /** one name's retries: 200 ms, 400 ms, … up to 2 s (formation: a member that comes up is added within 2 s; it polled every 200 ms before the shared backoff) */
  retry: { baseMs: 200, maxMs: 2_000 },
  logEveryMs: 10_000,
  /** one add of a name that answers: offer, catch up, promote */
  addDeadlineMs: 60_000,
} as const;

interface InitialMembersContext {
  /** this node leads a cluster with an id */
  leading: boolean;
  /** pending names that are not voters yet */
  missing: string[];
  next: string | null;
  failures: Record<string, number>;
  retryAt: Record<string, number>;
  lastError: Record<string, string>;
  lastLogAt: number;
  /** the controller's clock when the chart last read it (readClock) */
  now: number;
  /** some name was missing at some point; all of them voters is then worth a line */
  waited: boolean;
  announced: boolean;
}

const dueNames = (c: InitialMembersContext, now: number) => (c.leading ? c.missing.filter((n) => (c.retryAt[n] ?? 0) <= now) : []);

export const initialMembersMachine = setup({
  types: { context: {} as InitialMembersContext, events: {} as { type: 'CHECK' }, input: {} as { now: number } },
  actors: {
    /** provided by the controller: one add of `name`, on the leader */
    addMember: fromPromise<void, { name: string }>(async () => {}),
  },
  actions: {
    /** provided by the controller: read `leading` and `missing` from the member runtime */
    refresh: assign({}),
    /** provided by the controller: read its clock into `now` */
    readClock: assign({}),
    logProgress: () => {},
    noteProgress: assign(({ context }) => {
      const waiting = context.leading && context.missing.length > 0;
      return {
        waited: context.waited || waiting,
        announced: waiting ? false : context.announced || (context.leading && context.waited),
        lastLogAt: waiting && context.now - context.lastLogAt >= INITIAL_MEMBERS.logEveryMs ? context.now : context.lastLogAt,
      };
    }),
    pickNext: assign({ next: ({ context }) => dueNames(context, context.now)[0] ?? null }),
    recordAdded: assign(({ context }) => {
      const name = context.next!;
      const { [name]: _f, ...failures } = context.failures;
      return { failures, missing: context.missing.filter((n) => n !== name), next: null };
    }),
    recordFailure: assign(({ context, event }) => {
      const name = context.next!;
      const failures = (context.failures[name] ?? 0) + 1;
      return {
        failures: { ...context.failures, [name]: failures },
        retryAt: { ...context.retryAt, [name]: context.now + backoffDelay(INITIAL_MEMBERS.retry, failures) },
        lastError: { ...context.lastError, [name]: (event as { error?: Error }).error?.message ?? String(event) },
        next: null,
      };
    }),
  },
  guards: {
    someoneDue: ({ context }) => dueNames(context, context.now).length > 0,
    someoneMissing: ({ context }) => context.leading && context.missing.length > 0,
  },
  delays: {
    untilNextRetry: ({ context }) => Math.max(0, Math.min(...context.missing.map((n) => context.retryAt[n] ?? 0)) - context.now),
  },
}).createMachine({
  id: 'initialMembers',
  context: ({ input }) => ({ leading: false, missing: [], next: null, failures: {}, retryAt: {}, lastError: {}, lastLogAt: input.now, now: input.now, waited: false, announced: false }),
  initial: 'choosing',
  states: {
    choosing: {
      entry: ['readClock', 'refresh', 'logProgress', 'noteProgress'],
      always: [{ guard: 'someoneDue', target: 'adding', actions: 'pickNext' }, { guard: 'someoneMissing', target: 'waiting' }, { target: 'idle' }],
    },
    idle: { on: { CHECK: 'choosing' } },
    waiting: { after: { untilNextRetry: 'choosing' }, on: { CHECK: 'choosing' } },
    adding: {
      invoke: {
        src: 'addMember',
        input: ({ context }) => ({ name: context.next! }),
        onDone: { target: 'choosing', actions: 'recordAdded' },
        onError: { target: 'choosing', actions: ['readClock', 'recordFailure'] },
      },
    },
  },
});

/** start it while this node is a member; returns the function that stops it */
export function runInitialMembers(ctx: ControllerContext, membership: MembershipOps): () => void {
  const log = ctx.logFor('initialMembers');
  const read = () => {
    const member = ctx.member();
    if (!member || ctx.phase() !== 'member' || member.status().role !== 'leader' || ctx.store.identity().clusterId === null) return { leading: false, missing: [] };
    const config = member.raftStatus().membership;
    const voters = new Set(config.members.filter((m) => m.voter).map((m) => m.name));
    return { leading: true, missing: (config.pending ?? []).filter((n) => n !== ctx.name && !voters.has(n)) };
  };
  const actor: Actor<typeof initialMembersMachine> = createActor(
    initialMembersMachine.provide({
      actors: {
        addMember: fromPromise<void, { name: string }>(async ({ input }) => {
          try {
            await membership.runChange({ op: 'add', target: input.name, maxAttempts: 1, deadlineMs: INITIAL_MEMBERS.addDeadlineMs });
          } catch (err) {
            log.debug({ name: input.name, err: (err as Error).message }, `initial member ${input.name} not added yet`);
            throw err;
          }
          log.info({ name: input.name }, `initial member ${input.name} is a voter`);
        }),
      },
      actions: {
        refresh: assign(read),
        readClock: assign({ now: () => ctx.clock.now() }),
        logProgress: ({ context }) => {
          const waiting = context.leading && context.missing.length > 0;
          if (waiting && context.now - context.lastLogAt >= INITIAL_MEMBERS.logEveryMs) {
            const lastErrors = Object.fromEntries(context.missing.map((n) => [n, context.lastError[n] ?? null]));
            log.info({ missing: context.missing, lastErrors }, `waiting for initial members: ${context.missing.join(', ')}`);
          } else if (!waiting && context.leading && context.waited && !context.announced) {
            log.info('all initial members are voters');
          }
        },
      },
    }),
    { id: `initialMembers:${ctx.name}`, input: { now: ctx.clock.now() }, clock: ctx.clock },
  );
  const check = () => actor.send({ type: 'CHECK' });
  const offs = [ctx.events.on('leaderChanged', check), ctx.events.on('membershipChanged', check), ctx.events.on('phaseChanged', check)];
  actor.start();
  return () => {
    for (const off of offs) off();
    actor.stop();
  };
}
