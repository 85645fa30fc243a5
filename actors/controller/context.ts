// What the controller's parts share: one node's name, store, bus, clock, randomness, bootstrap actor,
// member runtime and logs. runtime/controller.ts builds one context and hands it to every part in
// this folder; a part never sees the facade itself. Every timer and time read of a part goes through
// `clock` (the XState actors it creates included), so a paused clock (the demo) or a simulated one
// (test/sim) holds the controller's timers as it holds the member's.
import { type Actor, type AnyActorRef, type InspectionEvent, type SnapshotFrom, waitFor } from 'xstate';
import type { bootstrapMachine, Phase } from '../../machines/bootstrap/machine.ts';
import type { ControllerOptions } from '../../runtime/config/controllerOptions.ts';
import type { ControllerEventHub, Refusal } from '../../runtime/events.ts';
import type { Logger } from '../../runtime/log/logger.ts';
import type { RateLimitedLog } from '../../runtime/log/rateLimit.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import type { Sender } from '../../runtime/wire/codec.ts';
import type { MemberRuntime } from '../member.ts';
import { type Clock, keepAliveClock, type MemberStore, type Random } from '../ports.ts';

export type BootstrapActor = Actor<typeof bootstrapMachine>;

/**
 * Test-only: deliberate bugs the simulator (test/sim) plants in the controller's parts to prove its
 * invariants catch them. All off by default: runtime/controller.ts never sets them, and no option,
 * configuration key or bus message reaches them.
 */
export interface ControllerTestFaults {
  /** a removal's notice is sent as the removal is proposed, before it commits (./membership.ts) */
  removalNoticeBeforeCommit?: boolean;
  /** the join rule is skipped wherever it is checked: the leader's admission of an auto-join request (./autoJoin.ts), its check of a join offer's answer (./membership.ts), the node's decision on an offer (./joinHandshake.ts) */
  joinSkipsRule?: boolean;
}

export interface ControllerContext {
  readonly name: string;
  readonly prefix: string;
  /** the node's store, as the member uses it (production: the NodeStore; the simulator: its SimStore) */
  readonly store: MemberStore;
  readonly bus: Bus;
  readonly opts: ControllerOptions;
  readonly events: ControllerEventHub;
  /** the node's clock: every timer and time read of the controller's parts (default the process's) */
  readonly clock: Clock;
  /** the node's randomness (default Math.random) */
  readonly random: Random;
  /** test-only planted bugs (the simulator's); absent in production */
  readonly testFaults?: ControllerTestFaults;
  /** every XState inspection event of this controller's actors goes here */
  readonly inspectionSink: (event: InspectionEvent) => void;
  /** rate-limited warnings, keyed by what went wrong */
  readonly refusalLog: RateLimitedLog;
  readonly log: Logger;
  /** the bootstrap actor (created after the context: read it only once the controller runs) */
  actor(): BootstrapActor;
  phase(): Phase;
  stopping(): boolean;
  /** the member runtime while there is one (joining or member) */
  member(): MemberRuntime | null;
  /** the member runtime, or NOT_A_MEMBER */
  memberRuntime(): MemberRuntime;
  /** the member runtime of the leader, or NOT_LEADER */
  requireLeader(): MemberRuntime;
  sender(): Sender;
  logFor(component: string): Logger;
  /** one refusal, reported at this end: counted, logged (rate-limited), given to refusal listeners */
  reportRefusal(component: string, refusal: Refusal): void;
  /** the operator keys in force (Controller.setOperators replaces them while it runs); absent: opts.operators */
  operators?(): ControllerOptions['operators'];
}

/** the node's clock: the one it was given (the demo's pausable one, the simulator's), else the process's */
export const clockOf = (opts: Pick<ControllerOptions, 'clock'>): Clock => opts.clock ?? keepAliveClock;

/** a chain that runs one piece of work at a time, in the order given (join offers, membership changes) */
export function serialQueue(): <T>(work: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (work) => {
    const run = tail.then(work);
    tail = run.catch(() => undefined);
    return run;
  };
}

/**
 * Resolves true as soon as `ready()` holds — checked now and at every leader change this node sees
 * (the raft status is current when the event fires) — or false after `timeoutMs`. No polling.
 */
export function untilLeaderChange(ctx: Pick<ControllerContext, 'events' | 'clock'>, ready: () => boolean, timeoutMs: number): Promise<boolean> {
  if (ready()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = ctx.clock.setTimeout(() => {
      off();
      resolve(false);
    }, timeoutMs);
    const off = ctx.events.on('leaderChanged', () => {
      if (!ready()) return;
      ctx.clock.clearTimeout(timer);
      off();
      resolve(true);
    });
  });
}

/** XState's `waitFor` with its timeout on `clock`: the snapshot that satisfies `predicate`, or an error after `timeoutMs` */
export async function waitForWithin<A extends AnyActorRef>(clock: Clock, actor: A, predicate: (snapshot: SnapshotFrom<A>) => boolean, timeoutMs: number): Promise<SnapshotFrom<A>> {
  const abort = new AbortController();
  const timer = clock.setTimeout(() => abort.abort(new Error(`Timeout of ${timeoutMs} ms exceeded`)), timeoutMs);
  try {
    return await waitFor(actor, predicate, { timeout: Infinity, signal: abort.signal });
  } finally {
    clock.clearTimeout(timer);
  }
}

/** `ms` on `clock` */
export function sleepOn(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}
