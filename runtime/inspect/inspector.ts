// The inspector's bus side: it announces itself (so nodes start publishing), collects every node's
// inspection stream, asks each node for its status over the admin subject, keeps bounded recent
// history, pushes frames to listeners (the HTTP server's live channel) and optionally records them.
import { randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { adminCall } from '../admin.ts';
import type { AdminSigner } from '../wire/adminAuth.ts';
import type { Logger } from '../log/logger.ts';
import { NoRespondersError, RequestTimeoutError, type Bus, type BusSubscription } from '../transport/types.ts';
import { decode, decodeReply, encode, type Sender } from '../wire/codec.ts';
import {
  type ActorState,
  BATCH_TYPE,
  type BatchBody,
  type InspectEvent,
  inspectBodies,
  SNAPSHOT_REQUEST_TYPE,
  SNAPSHOT_TYPE,
  type SnapshotBody,
  snapshotSubject,
  streamWildcard,
  WATCH_EVERY_MS,
  WATCH_TTL_MS,
  WATCH_TYPE,
  watchSubject,
} from './protocol.ts';

export const RECORDING_FORMAT = 'conclave-inspect-recording';
export const RECORDING_VERSION = 1;

/** A node's entry in `/api/cluster`: its status object, plus whether the inspector reached it. */
export type NodeStatus = Record<string, unknown> & { name: string; reachable: boolean; error?: string; checkedAt: number };

/** What the inspector pushes to the page and writes to a recording, one per line. */
export type Frame =
  | { kind: 'batch'; t: number; node: string; events: InspectEvent[]; dropped: number }
  | { kind: 'snapshot'; t: number; node: string; actors: ActorState[]; status: Record<string, unknown> | null; recent?: InspectEvent[] }
  | { kind: 'cluster'; t: number; nodes: NodeStatus[] };

export interface RecordingHeader {
  format: typeof RECORDING_FORMAT;
  version: number;
  prefix: string;
  startedAt: number;
}

export interface InspectorOptions {
  bus: Bus;
  prefix: string;
  logger?: Logger;
  /** write every frame to this file (NDJSON, header line first) */
  record?: string;
  /** stop recording past this size; default 256 MiB */
  recordMaxBytes?: number;
  statusEveryMs?: number;
  statusTimeoutMs?: number;
  /** recent timeline events kept for a page opened late; default 5000 */
  maxEvents?: number;
  /** recent raft messages (`msg` events, kept apart from the timeline events) for a page opened late; default 2000 */
  maxMessages?: number;
  /** the demo's faults (paused, cut off), shown with each node's status */
  faults?: () => Array<{ name: string; paused?: boolean; cutOff?: boolean }>;
  /** signs the status requests: an operator or read-only key, needed when the members say `reads: 'signed'` */
  signer?: AdminSigner;
}

const INSPECTOR_SENDER: Sender = { name: 'inspector', nodeId: null, clusterId: null };
const MAX_NODES = 256;
const MAX_NOTABLE = 300;

/** a refusal, or a step of a join handshake (the leader's membership actor, the node's join actor) */
export function isNotable(e: InspectEvent): boolean {
  return e.k === 'refused' || ((e.k === 'state' || e.k === 'actor') && (e.m === 'membership' || e.m === 'join'));
}

interface NodeView {
  name: string;
  actors: Map<string, ActorState>;
  status: NodeStatus | null;
  lastHeard: number;
  /** from the envelopes of its inspection stream: its store's identity generation */
  generation?: number;
  /** the kind of bus it is attached to (its snapshot says) */
  bus?: string;
}

export class Inspector {
  readonly watcherId = randomUUID();
  private readonly nodes = new Map<string, NodeView>();
  private readonly recent: Array<InspectEvent & { node: string }> = [];
  /** raft messages, kept apart: at a few hundred a second they would push every other event out of `recent` */
  private readonly recentMessages: Array<InspectEvent & { node: string }> = [];
  /** refusals and the join handshakes' steps, kept apart: routine events push them out of `recent` within seconds */
  private readonly notable: Array<InspectEvent & { node: string }> = [];
  private readonly listeners = new Set<(frame: Frame) => void>();
  private subscription: BusSubscription | null = null;
  private timers: NodeJS.Timeout[] = [];
  private polling = false;
  private recorder: WriteStream | null = null;
  private recordedBytes = 0;
  private stopped = false;

  constructor(private readonly opts: InspectorOptions) {}

  async start(): Promise<void> {
    const { bus, prefix } = this.opts;
    if (this.opts.record) {
      this.recorder = createWriteStream(this.opts.record, { flags: 'w' });
      await new Promise<void>((resolve, reject) => {
        this.recorder!.once('open', () => resolve());
        this.recorder!.once('error', reject);
      });
      const header: RecordingHeader = { format: RECORDING_FORMAT, version: RECORDING_VERSION, prefix, startedAt: Date.now() };
      this.write(header);
    }
    this.subscription = bus.subscribe(streamWildcard(prefix), (msg) => this.onStream(msg.data));
    await bus.flush();
    this.announce();
    this.timers.push(setInterval(() => this.announce(), WATCH_EVERY_MS));
    this.timers.push(setInterval(() => void this.pollStatus(), this.opts.statusEveryMs ?? 1000));
    for (const t of this.timers) t.unref();
    void this.pollStatus();
  }

  /** Receive every frame from now on; returns the function that stops it. */
  onFrame(listener: (frame: Frame) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** What a page opened now needs: the current state of every node and the recent events. */
  current(): {
    nodes: Array<{ name: string; actors: ActorState[]; status: NodeStatus | null }>;
    events: Array<InspectEvent & { node: string }>;
    notable: Array<InspectEvent & { node: string }>;
  } {
    return {
      nodes: [...this.nodes.values()].map((n) => ({ name: n.name, actors: [...n.actors.values()], status: n.status })),
      events: [...this.recent, ...this.recentMessages],
      notable: [...this.notable],
    };
  }

  /** `/api/cluster`: one status object per node, in name order, with its generation and bus when known. */
  cluster(): { nodes: NodeStatus[] } {
    const faults = new Map((this.opts.faults?.() ?? []).map((f) => [f.name, f]));
    const nodes = [...this.nodes.values()]
      .map((n) => ({
        ...(n.status ?? { name: n.name, reachable: false, error: 'not asked yet', checkedAt: 0 }),
        ...(n.generation !== undefined ? { generation: n.generation } : {}),
        ...(n.bus !== undefined ? { bus: n.bus } : {}),
        ...(faults.get(n.name)?.paused ? { paused: true } : {}),
        ...(faults.get(n.name)?.cutOff ? { cutOff: true } : {}),
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
    return { nodes };
  }

  /** Ask one node for the current state of its actors (request/reply). */
  async requestSnapshot(name: string, timeoutMs = 1000): Promise<void> {
    const reply = await this.opts.bus.request(snapshotSubject(this.opts.prefix, name), encode(INSPECTOR_SENDER, SNAPSHOT_REQUEST_TYPE, {}), { timeoutMs });
    const decoded = decodeReply(reply.data);
    if (decoded.ok) this.onSnapshot(decoded.body as SnapshotBody & { recent?: InspectEvent[] });
  }

  private announce(): void {
    if (this.stopped || this.opts.bus.closed) return;
    try {
      this.opts.bus.publish(watchSubject(this.opts.prefix), encode(INSPECTOR_SENDER, WATCH_TYPE, { watcher: this.watcherId, ttlMs: WATCH_TTL_MS }));
    } catch (err) {
      this.opts.logger?.warn({ err }, 'inspector announcement not published');
    }
  }

  private view(name: string): NodeView | null {
    let view = this.nodes.get(name);
    if (!view) {
      if (this.nodes.size >= MAX_NODES) return null;
      view = { name, actors: new Map(), status: null, lastHeard: 0 };
      this.nodes.set(name, view);
    }
    return view;
  }

  private onStream(data: Uint8Array): void {
    const decoded = decode(data, inspectBodies);
    if (!decoded.ok) return;
    const { type, from, gen } = decoded.envelope;
    if (type !== BATCH_TYPE && type !== SNAPSHOT_TYPE) return;
    const body = decoded.body as BatchBody | (SnapshotBody & { recent?: InspectEvent[] });
    // the envelope says which store generation the node runs (only for the node's own stream)
    if (gen !== undefined && from === body.node) {
      const view = this.view(body.node);
      if (view) view.generation = gen;
    }
    if (type === BATCH_TYPE) this.onBatch(body as BatchBody);
    else this.onSnapshot(body as SnapshotBody & { recent?: InspectEvent[] });
  }

  private onSnapshot(body: SnapshotBody & { recent?: InspectEvent[] }): void {
    const view = this.view(body.node);
    if (!view) return;
    view.lastHeard = Date.now();
    if (body.bus !== undefined) view.bus = body.bus;
    view.actors = new Map(body.actors.map((a) => [a.a, a]));
    for (const e of body.recent ?? []) this.remember(body.node, e);
    this.emit({ kind: 'snapshot', t: Date.now(), node: body.node, actors: body.actors, status: body.status, ...(body.recent?.length ? { recent: body.recent } : {}) });
  }

  private onBatch(body: BatchBody): void {
    const view = this.view(body.node);
    if (!view) return;
    view.lastHeard = Date.now();
    for (const e of body.events) {
      if (e.k === 'state') {
        if (e.status === 'active') view.actors.set(e.a, { a: e.a, m: e.m, states: e.states, status: e.status, ...(e.ctx ? { ctx: e.ctx } : {}) });
        else view.actors.delete(e.a);
      }
      this.remember(body.node, e);
    }
    this.emit({ kind: 'batch', t: Date.now(), node: body.node, events: body.events, dropped: body.dropped });
  }

  private remember(node: string, e: InspectEvent): void {
    // refusals are rare and important: never deduplicated away, kept like any other event
    const entry = { ...e, node };
    if (e.k === 'msg') {
      this.recentMessages.push(entry);
      const max = this.opts.maxMessages ?? 2000;
      if (this.recentMessages.length > max) this.recentMessages.splice(0, this.recentMessages.length - max);
      return;
    }
    if (isNotable(e)) {
      if (e.k === 'refused' && this.notable.some((r) => r.k === 'refused' && r.node === node && r.t === e.t)) return;
      this.notable.push(entry);
      if (this.notable.length > MAX_NOTABLE) this.notable.shift();
    }
    this.recent.push(entry);
    const max = this.opts.maxEvents ?? 5000;
    if (this.recent.length > max) this.recent.splice(0, this.recent.length - max);
  }

  private async pollStatus(): Promise<void> {
    if (this.polling || this.stopped) return;
    this.polling = true;
    try {
      const names = new Set(this.nodes.keys());
      for (const n of this.nodes.values()) {
        const members = n.status?.members;
        if (Array.isArray(members)) for (const m of members) if (m && typeof m.name === 'string') names.add(m.name);
      }
      const timeoutMs = this.opts.statusTimeoutMs ?? 800;
      const results = await Promise.all([...names].map((name) => this.askStatus(name, timeoutMs)));
      if (this.stopped) return;
      for (const s of results) {
        const view = this.view(s.name);
        if (!view) continue;
        // an unreachable node keeps its last known view, marked unreachable
        view.status = s.reachable ? s : { ...(view.status ?? { name: s.name }), reachable: false, error: s.error, checkedAt: s.checkedAt };
        // a node we never heard from on the stream: ask for its actors once it answers
        if (s.reachable && view.actors.size === 0) void this.requestSnapshot(s.name).catch(() => {});
      }
      this.emit({ kind: 'cluster', t: Date.now(), nodes: this.cluster().nodes });
    } finally {
      this.polling = false;
    }
  }

  private async askStatus(name: string, timeoutMs: number): Promise<NodeStatus> {
    const checkedAt = Date.now();
    try {
      const status = await adminCall(this.opts.bus, this.opts.prefix, name, INSPECTOR_SENDER, 'status', {}, timeoutMs, this.opts.signer);
      return { ...status, name, reachable: true, checkedAt };
    } catch (err) {
      const error =
        err instanceof NoRespondersError ? 'no responders: the node is not running' : err instanceof RequestTimeoutError ? `no answer within ${timeoutMs} ms` : (err as Error).message;
      return { name, reachable: false, error, checkedAt };
    }
  }

  private emit(frame: Frame): void {
    if (this.stopped) return;
    this.write(frame);
    for (const listener of this.listeners) {
      try {
        listener(frame);
      } catch (err) {
        this.opts.logger?.warn({ err }, 'inspector listener failed');
      }
    }
  }

  private write(line: unknown): void {
    if (!this.recorder) return;
    const text = `${JSON.stringify(line)}\n`;
    this.recordedBytes += Buffer.byteLength(text);
    if (this.recordedBytes > (this.opts.recordMaxBytes ?? 256 * 1024 * 1024)) {
      this.opts.logger?.warn({ file: this.opts.record }, 'recording reached its size limit and stopped');
      this.recorder.end();
      this.recorder = null;
      return;
    }
    this.recorder.write(text);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    try {
      this.subscription?.unsubscribe();
    } catch {
      // the bus may be closed already
    }
    this.listeners.clear();
    const recorder = this.recorder;
    this.recorder = null;
    if (recorder) await new Promise<void>((resolve) => recorder.end(resolve));
  }
}
