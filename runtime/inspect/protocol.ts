// The inspection wire: what a controller publishes on `<prefix>.inspect.<name>` and what an
// inspector sends to make it publish. Every message is an envelope of runtime/wire/codec.ts.
//
//   <prefix>.inspect._watch           inspector → all   'inspect.watch'    {watcher, ttlMs}
//   <prefix>.inspect.<name>           node → inspectors 'inspect.batch'    {node, seq, events, dropped}
//                                                       'inspect.snapshot' {node, actors, status}
//   <prefix>.inspect.<name>.snapshot  request/reply     'inspect.snapshot-request' → snapshot body
//
// A node publishes only while a watcher announced itself in the last ttlMs: nobody watching costs
// one Map write per state change. `_watch` cannot clash with a node name (names start [a-z0-9]).
import { z } from 'zod';

export const WATCH_TYPE = 'inspect.watch';
export const BATCH_TYPE = 'inspect.batch';
export const SNAPSHOT_TYPE = 'inspect.snapshot';
export const SNAPSHOT_REQUEST_TYPE = 'inspect.snapshot-request';

/** how often an inspector announces itself, and how long a node keeps publishing after the last one */
export const WATCH_EVERY_MS = 1000;
export const WATCH_TTL_MS = 3500;
/** a node batches inspection events for this long into one bus message */
export const BATCH_EVERY_MS = 50;
/** at most this many events per batch; the rest are counted in `dropped` */
export const MAX_EVENTS_PER_BATCH = 500;

export const watchSubject = (prefix: string) => `${prefix}.inspect._watch`;
export const streamSubject = (prefix: string, name: string) => `${prefix}.inspect.${name}`;
export const streamWildcard = (prefix: string) => `${prefix}.inspect.*`;
export const snapshotSubject = (prefix: string, name: string) => `${prefix}.inspect.${name}.snapshot`;

import type { Refusal } from '../events.ts';

export type { Refusal };

/** One compact inspection event. `a` is the actor id (e.g. `raft:n1`), `t` epoch ms. */
export type InspectEvent =
  /** a state change: the active state node ids of a machine actor (or status of another actor) */
  | { k: 'state'; t: number; a: string; m: string | null; states: string[]; status: string; ctx?: Record<string, unknown> }
  /** an event delivered to actor `a`; `n` counts identical events merged within one batch */
  | { k: 'event'; t: number; a: string; type: string; src: string | null; n: number }
  /**
   * transitions taken, as edge keys `source|eventType|targets` of the machine definition; `ev` is the
   * event being processed (for an `always` edge: the event that led to it, e.g. a tick or PEER_MESSAGE)
   */
  | { k: 'step'; t: number; a: string; edges: string[]; n: number; ev?: string }
  /** an actor was created */
  | { k: 'actor'; t: number; a: string; m: string | null; parent: string | null }
  /**
   * raft messages handed to actor `a` (the receiver's raft chart); `n` counts the same from, to, type,
   * term and outcome within one batch; `entries`: the log entries those appends carried in all;
   * `ok`: a reply's outcome (vote granted, append accepted); `bytes`: the size of snapshot chunks
   * (type `snapshot-chunk`, from a joining node's progress reports: chunks.ts)
   */
  | { k: 'msg'; t: number; a: string; type: string; from: string; to: string; term: number | null; n: number; entries?: number; ok?: boolean; bytes?: number }
  /** the event type `conclave.refused`: the join rule refused a peer */
  | ({ k: 'refused'; t: number; a: string; type: 'conclave.refused' } & Refusal);

export interface ActorState {
  a: string;
  m: string | null;
  states: string[];
  status: string;
  ctx?: Record<string, unknown>;
}

export interface BatchBody {
  node: string;
  seq: number;
  events: InspectEvent[];
  /** events dropped because the batch was full */
  dropped: number;
}

export interface SnapshotBody {
  node: string;
  actors: ActorState[];
  status: Record<string, unknown> | null;
  /** the kind of bus the node is attached to ('nats', 'in-process') */
  bus?: string;
}

const jsonObject = z.record(z.string(), z.unknown());
const inspectEventSchema = z.discriminatedUnion('k', [
  z.object({ k: z.literal('state'), t: z.number(), a: z.string(), m: z.string().nullable(), states: z.array(z.string()).max(64), status: z.string(), ctx: jsonObject.optional() }),
  z.object({ k: z.literal('event'), t: z.number(), a: z.string(), type: z.string().max(200), src: z.string().nullable(), n: z.number().int().min(1) }),
  z.object({ k: z.literal('step'), t: z.number(), a: z.string(), edges: z.array(z.string()).max(64), n: z.number().int().min(1), ev: z.string().max(200).optional() }),
  z.object({ k: z.literal('actor'), t: z.number(), a: z.string(), m: z.string().nullable(), parent: z.string().nullable() }),
  z.object({
    k: z.literal('msg'),
    t: z.number(),
    a: z.string(),
    type: z.string().max(200),
    from: z.string().max(200),
    to: z.string().max(200),
    term: z.number().nullable(),
    n: z.number().int().min(1),
    entries: z.number().int().min(0).optional(),
    ok: z.boolean().optional(),
    bytes: z.number().int().min(0).optional(),
  }),
  z.object({
    k: z.literal('refused'),
    t: z.number(),
    a: z.string(),
    type: z.literal('conclave.refused'),
    reason: z.string(),
    from: z.string(),
    localClusterId: z.string().nullable(),
    remoteClusterId: z.string().nullable(),
    message: z.string().max(1000),
  }),
]);
const actorStateSchema = z.object({ a: z.string(), m: z.string().nullable(), states: z.array(z.string()).max(64), status: z.string(), ctx: jsonObject.optional() });

export const inspectBodies: Record<string, z.ZodType<unknown>> = {
  [WATCH_TYPE]: z.object({ watcher: z.string().min(1).max(64), ttlMs: z.number().int().min(100).max(60_000) }),
  [BATCH_TYPE]: z.object({ node: z.string(), seq: z.number().int().min(0), events: z.array(inspectEventSchema).max(MAX_EVENTS_PER_BATCH), dropped: z.number().int().min(0) }),
  [SNAPSHOT_TYPE]: z.object({ node: z.string(), actors: z.array(actorStateSchema).max(256), status: jsonObject.nullable(), bus: z.string().max(32).optional() }),
  [SNAPSHOT_REQUEST_TYPE]: z.object({}),
};
