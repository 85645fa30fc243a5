// The controller side of inspection: XState inspection events of every actor of one controller,
// compacted and batched (one bus message per ~50 ms) on `<prefix>.inspect.<name>`, but only while
// an inspector announced itself recently. Nobody watching: the listener remembers which actors
// exist and returns. A snapshot request (or a new watcher) gets the current state of every actor.
import { randomUUID } from 'node:crypto';
import type { ActorRefLike, InspectionEvent } from 'xstate';
import type { Logger } from '../log/logger.ts';
import type { Bus, BusSubscription } from '../transport/types.ts';
import { decode, encode, encodeReply, type Sender } from '../wire/codec.ts';
import {
  BATCH_EVERY_MS,
  BATCH_TYPE,
  type BatchBody,
  type InspectEvent,
  inspectBodies,
  MAX_EVENTS_PER_BATCH,
  type Refusal,
  SNAPSHOT_TYPE,
  type SnapshotBody,
  snapshotSubject,
  streamSubject,
  WATCH_TYPE,
  watchSubject,
} from './protocol.ts';
import { type ChunkProgress, snapshotChunkEvent } from './chunks.ts';
import { actorState, compactEvent, raftMessageEvents } from './summarize.ts';

/** What the publisher needs of a controller (runtime/controller.ts's Controller has all of it). */
export interface InspectableController {
  readonly name: string;
  readonly prefix: string;
  readonly bus: Bus;
  status(): unknown;
  onInspection(listener: (event: InspectionEvent) => void): () => void;
  /** the join rule's refusals (foreign peer messages, refused joins), when the controller reports them */
  onRefusal?(listener: (refusal: Refusal) => void): () => void;
  sender?(): Sender;
  /** the root actor: seeds the actor list when the publisher is attached after start */
  readonly actor?: ActorRefLike;
}

export interface PublisherOptions {
  logger?: Logger;
  /** batch window; default 50 ms */
  batchEveryMs?: number;
}

export interface InspectionPublisher {
  /** true while some inspector watches */
  readonly watching: boolean;
  /** report a refusal (for controllers without onRefusal) */
  refused(refusal: Refusal): void;
  stop(): void;
}

const MAX_ACTORS = 128;
/**
 * A node that starts while a page watches learns of the watch with the inspector's next
 * announcement (every second); a join handshake can be over by then. So what happens in its first
 * seconds is kept (one batch's worth, merged as usual) and sent when the first watch comes.
 */
const STARTUP_BACKLOG_MS = 5000;
const MAX_RECENT_REFUSALS = 20;
const publishers = new WeakMap<InspectableController, InspectionPublisher>();

/** Attach the inspection publisher to a controller (idempotent: a second call returns the first). */
export function attachInspectionPublisher(controller: InspectableController, opts: PublisherOptions = {}): InspectionPublisher {
  const existing = publishers.get(controller);
  if (existing) return existing;
  const publisher = new Publisher(controller, opts);
  publishers.set(controller, publisher);
  return publisher;
}

class Publisher implements InspectionPublisher {
  private readonly actors = new Set<ActorRefLike>();
  private readonly watchers = new Map<string, number>();
  private readonly lastStates = new Map<ActorRefLike, string>();
  private readonly recentRefusals: InspectEvent[] = [];
  private queue: InspectEvent[] = [];
  /** merge index of repeated events within one batch: key → queued event */
  private merge = new Map<string, { n: number; entries?: number; bytes?: number }>();
  /** the snapshot chunks each joining node's bootstrap chart reported so far */
  private readonly chunkProgress: ChunkProgress = new Map();
  private dropped = 0;
  private seq = 0;
  private watchUntil = 0;
  private readonly startedAt = Date.now();
  /** false once the startup window has passed unwatched (the backlog is gone) */
  private keepingBacklog = true;
  private flushTimer: NodeJS.Timeout | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly subscriptions: BusSubscription[] = [];
  private readonly unlisten: Array<() => void> = [];
  watching = false;

  constructor(
    private readonly controller: InspectableController,
    private readonly opts: PublisherOptions,
  ) {
    if (controller.actor) this.actors.add(controller.actor);
    this.unlisten.push(controller.onInspection(this.onInspection));
    if (controller.onRefusal) this.unlisten.push(controller.onRefusal((r) => this.refused(r)));
    const { bus, prefix, name } = controller;
    this.subscriptions.push(
      bus.subscribe(watchSubject(prefix), (msg) => {
        const decoded = decode(msg.data, inspectBodies);
        if (!decoded.ok || decoded.envelope.type !== WATCH_TYPE) return;
        const body = decoded.body as { watcher: string; ttlMs: number };
        this.onWatch(body.watcher, body.ttlMs);
      }),
      bus.subscribe(snapshotSubject(prefix, name), (msg) => {
        msg.respond(encodeReply({ ok: true, body: this.snapshot() }));
      }),
    );
  }

  /** the hot path: called for every inspection event of every actor of the controller */
  private readonly onInspection = (event: InspectionEvent): void => {
    // actors created before the publisher was attached are learned from their next snapshot
    if ((event.type === '@xstate.actor' || event.type === '@xstate.snapshot') && !this.actors.has(event.actorRef)) {
      if (this.actors.size >= MAX_ACTORS) this.pruneActors();
      this.actors.add(event.actorRef);
    }
    // unwatched after the startup window: nothing more than this test on the hot path
    if (!this.watching && !this.keepingBacklog) return;
    const now = Date.now();
    if (!this.watching && !this.keepBacklog(now)) return;
    const compact = compactEvent(event, now, this.lastStates);
    if (compact) this.enqueue(compact);
    for (const m of raftMessageEvents(event, now)) this.enqueue(m);
    const chunks = snapshotChunkEvent(event, now, this.chunkProgress);
    if (chunks) this.enqueue(chunks);
  };

  /** unwatched: whether this event still goes to the startup backlog */
  private keepBacklog(now: number): boolean {
    if (now - this.startedAt <= STARTUP_BACKLOG_MS) return true;
    this.keepingBacklog = false;
    this.queue = [];
    this.merge.clear();
    this.dropped = 0;
    return false;
  }

  private enqueue(e: InspectEvent): void {
    if (e.k === 'event' || e.k === 'step' || e.k === 'msg') {
      const key = e.k === 'event' ? `e|${e.a}|${e.type}|${e.src}` : e.k === 'msg' ? `m|${e.a}|${e.from}|${e.to}|${e.type}|${e.term}|${e.ok}` : `s|${e.a}|${e.edges.join(';')}|${e.ev}`;
      const queued = this.merge.get(key);
      if (queued) {
        queued.n += e.n;
        // merged appends: the entries they carried, in all (snapshot chunks: their bytes)
        if (e.k === 'msg' && e.entries !== undefined) queued.entries = (queued.entries ?? 0) + e.entries;
        if (e.k === 'msg' && e.bytes !== undefined) queued.bytes = (queued.bytes ?? 0) + e.bytes;
        return;
      }
      this.merge.set(key, e);
    }
    if (this.queue.length >= MAX_EVENTS_PER_BATCH) {
      this.dropped++;
      return;
    }
    this.queue.push(e);
  }

  private pruneActors(): void {
    for (const ref of this.actors) {
      const status = (ref.getSnapshot?.() as { status?: string } | undefined)?.status;
      if (status !== 'active') this.actors.delete(ref);
    }
    // still full of live actors: forget the oldest
    while (this.actors.size >= MAX_ACTORS) {
      const first = this.actors.values().next().value;
      if (!first) break;
      this.actors.delete(first);
    }
  }

  refused(refusal: Refusal): void {
    // a foreign peer retries every tick: one report per peer and cluster id per second is enough
    const last = this.recentRefusals.findLast((r) => r.k === 'refused' && r.from === refusal.from && r.remoteClusterId === refusal.remoteClusterId && r.reason === refusal.reason);
    if (last && Date.now() - last.t < 1000) return;
    const event: InspectEvent = { k: 'refused', t: Date.now(), a: this.controller.name, type: 'conclave.refused', ...refusal, message: refusal.message.slice(0, 1000) };
    this.recentRefusals.push(event);
    if (this.recentRefusals.length > MAX_RECENT_REFUSALS) this.recentRefusals.shift();
    if (this.watching) this.enqueue(event);
  }

  private sender(): Sender {
    try {
      return this.controller.sender?.() ?? { name: this.controller.name, nodeId: null, clusterId: null };
    } catch {
      return { name: this.controller.name, nodeId: null, clusterId: null };
    }
  }

  snapshot(): SnapshotBody & { recent: InspectEvent[] } {
    const actors = [];
    for (const ref of this.actors) {
      const snap = ref.getSnapshot?.() as { status?: string } | undefined;
      if (snap?.status !== 'active') {
        if (snap) this.actors.delete(ref);
        continue;
      }
      actors.push(actorState(ref, snap));
    }
    let status: Record<string, unknown> | null = null;
    try {
      status = this.controller.status() as Record<string, unknown>;
    } catch {
      status = null;
    }
    return { node: this.controller.name, actors, status, bus: this.controller.bus.kind, recent: [...this.recentRefusals] };
  }

  private onWatch(watcher: string, ttlMs: number): void {
    if (this.stopped) return;
    const isNew = !this.watchers.has(watcher);
    this.watchers.set(watcher, Date.now() + ttlMs);
    this.watchUntil = Math.max(this.watchUntil, Date.now() + ttlMs);
    if (!this.watching) {
      this.watching = true;
      this.lastStates.clear();
      this.flushTimer = setInterval(() => this.flush(), this.opts.batchEveryMs ?? BATCH_EVERY_MS);
      this.flushTimer.unref();
      this.expiryTimer = setInterval(() => this.expire(), 500);
      this.expiryTimer.unref();
    }
    // what happened before the first watch (the startup backlog) goes first, the current state after it
    if (this.keepingBacklog) {
      this.keepingBacklog = false;
      this.flush();
    }
    // a page opened late sees the current state at once
    if (isNew) this.publish(SNAPSHOT_TYPE, this.snapshot());
  }

  private expire(): void {
    const now = Date.now();
    for (const [id, until] of this.watchers) if (until < now) this.watchers.delete(id);
    if (now < this.watchUntil) return;
    this.flush();
    this.watching = false;
    this.clearTimers();
    this.queue = [];
    this.merge.clear();
  }

  private clearTimers(): void {
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    this.flushTimer = null;
    this.expiryTimer = null;
  }

  private flush(): void {
    if (this.queue.length === 0 && this.dropped === 0) return;
    const body: BatchBody = { node: this.controller.name, seq: this.seq++, events: this.queue, dropped: this.dropped };
    this.queue = [];
    this.merge = new Map();
    this.dropped = 0;
    this.publish(BATCH_TYPE, body);
  }

  private publish(type: string, body: unknown): void {
    const { bus, prefix, name } = this.controller;
    if (bus.closed) return;
    try {
      bus.publish(streamSubject(prefix, name), encode(this.sender(), type, body));
    } catch (err) {
      this.opts.logger?.warn({ err, type }, 'inspection message not published');
    }
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.watching = false;
    this.clearTimers();
    for (const off of this.unlisten) off();
    for (const s of this.subscriptions) {
      try {
        s.unsubscribe();
      } catch {
        // the bus may already be closed
      }
    }
    publishers.delete(this.controller);
  }
}

export { randomUUID as newWatcherId };
