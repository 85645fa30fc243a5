// The simulated network and each process's bus on it (the member's MemberBus port): messages are
// real encoded bytes on `<prefix>.node.<name>.peer` subjects, delayed, dropped, duplicated and so
// reordered by the seed, cut by partitions, and refused over the bus's max payload, as NATS refuses
// them. Requests (admin requests on `<prefix>.node.<name>.admin`: a forwarded write or read, a
// `whois`, a join offer) travel the same network: lost, delayed or cut on the way there and on the
// way back, answered with "no responders" when nothing subscribes there, timed out by the
// requester's clock. A subject that names no node (`<prefix>.discover`, where auto-join asks) is a
// broadcast: one copy to every process subscribed to it, each lost, delayed or cut on its own; the
// first answer to a request wins, as with NATS.
import type { Bus, BusMessage, BusState, BusSubscription, RequestOptions } from '../../runtime/transport/types.ts';
import { NoRespondersError, RequestTimeoutError } from '../../runtime/transport/types.ts';
import type { SimClock } from './clock.ts';

/** one bus message in flight */
export interface Delivery {
  subject: string;
  data: Uint8Array;
  /** sender and receiver node ids (the receiver resolved from the subject's name) */
  from: string;
  to: string | null;
  /** ghost: the lineage the simulator knew the sender belonged to when it sent (never read by nodes) */
  lineage: string | null;
  /** a request: how its answer (or "no responders") travels back to the requester */
  request?: PendingRequest;
}

/** the requester's end of a request in flight */
interface PendingRequest {
  respond(answer: Uint8Array): void;
  noResponders(): void;
}

/** what the network needs of the simulation around it */
export interface NetworkWorld {
  readonly prefix: string;
  readonly maxPayload: number;
  /** node id of a node name (null: no such node) */
  nodeIdOf(name: string): string | null;
  senderLineage(nodeId: string): string | null;
  /** the message is lost (a fault) or cut (a partition, a long lag) */
  lost(): boolean;
  cut(from: string, to: string): boolean;
  /** transit time, and whether to deliver a second copy */
  delay(): number;
  duplicate(): boolean;
  scheduleDelivery(time: number, delivery: Delivery): void;
  /** run `fire` after `ms` of simulated time (a reply on its way back) */
  later(ms: number, fire: () => void): void;
  now(): number;
  /** a message the bus refuses (over the max payload): recorded as a violation */
  tooLarge(delivery: Delivery, bytes: number): void;
  /** a message is handed to its subscriber (the ghost lineage of its sender is in scope meanwhile) */
  delivering(delivery: Delivery | null): void;
  /** the member threw out of its bus handler: a crash in production */
  handlerThrew(delivery: Delivery, err: unknown): void;
}

interface Subscription {
  subject: string;
  bus: SimBus;
  handler(msg: BusMessage): void;
}

/** `<prefix>.node.<name>.<kind>`: addressed to the one node of that name */
function namedNode(subject: string): string | null {
  const parts = subject.split('.');
  return parts.length === 4 && parts[1] === 'node' ? parts[2]! : null;
}

export class SimNetwork {
  /** by subject for a node's subjects (one subscriber: the node); by subject and process for a broadcast subject */
  private readonly subscriptions = new Map<string, Subscription>();
  largestMessage = 0;

  constructor(private readonly world: NetworkWorld) {}

  private keyOf(subject: string, nodeId: string): string {
    return namedNode(subject) === null ? `${subject} ${nodeId}` : subject;
  }

  /** the node a subject names (null: no such node), or every process subscribed to a broadcast subject now */
  private receiversOf(subject: string): Array<string | null> {
    const name = namedNode(subject);
    if (name !== null) return [this.world.nodeIdOf(name)];
    const receivers: string[] = [];
    for (const sub of this.subscriptions.values()) if (sub.subject === subject) receivers.push(sub.bus.nodeId);
    return receivers;
  }

  /** `request`: the requester's end, for the copy that goes to each receiver */
  publish(from: string, subject: string, data: Uint8Array, request?: (to: string | null) => PendingRequest): void {
    const w = this.world;
    const receivers = this.receiversOf(subject);
    this.refuseTooLarge({ subject, data, from, to: receivers[0] ?? null, lineage: w.senderLineage(from) }, data);
    for (const to of receivers) {
      const delivery: Delivery = { subject, data, from, to, lineage: w.senderLineage(from), ...(request ? { request: request(to) } : {}) };
      if (w.lost()) continue;
      w.scheduleDelivery(w.now() + w.delay(), delivery);
      // (core NATS does not deliver a request twice)
      if (request === undefined && w.duplicate()) w.scheduleDelivery(w.now() + w.delay(), delivery);
    }
  }

  private refuseTooLarge(delivery: Delivery, data: Uint8Array): void {
    const w = this.world;
    if (data.byteLength > this.largestMessage) this.largestMessage = data.byteLength;
    if (data.byteLength > w.maxPayload) {
      w.tooLarge(delivery, data.byteLength);
      throw new Error(`message of ${data.byteLength} bytes exceeds the max payload of ${w.maxPayload}`);
    }
  }

  /** a delivery event is due: hand it to whoever subscribes now (a request nobody subscribes to is told so) */
  deliver(delivery: Delivery): boolean {
    if (delivery.to === null || this.world.cut(delivery.from, delivery.to)) return false;
    const sub = this.subscriptions.get(this.keyOf(delivery.subject, delivery.to));
    if (sub === undefined) {
      // (a broadcast's receiver that is gone just does not answer: others may)
      if (namedNode(delivery.subject) !== null) delivery.request?.noResponders();
      return false;
    }
    const { request } = delivery;
    const msg: BusMessage = {
      subject: delivery.subject,
      data: delivery.data,
      ...(request ? { reply: `_INBOX.${delivery.from}` } : {}),
      respond: (answer) => {
        if (request === undefined) return false;
        // the reply travels back like any message (size-limited, lost, delayed, cut)
        this.refuseTooLarge({ ...delivery, subject: `_INBOX.${delivery.from}`, data: answer, from: delivery.to!, to: delivery.from }, answer);
        request.respond(answer);
        return true;
      },
    };
    this.world.delivering(delivery);
    try {
      sub.handler(msg);
    } catch (err) {
      this.world.handlerThrew(delivery, err);
    } finally {
      this.world.delivering(null);
    }
    return true;
  }

  subscribe(bus: SimBus, subject: string, handler: (msg: BusMessage) => void): BusSubscription {
    const sub: Subscription = { subject, bus, handler };
    const key = this.keyOf(subject, bus.nodeId);
    this.subscriptions.set(key, sub);
    return {
      subject,
      unsubscribe: () => {
        if (this.subscriptions.get(key) === sub) this.subscriptions.delete(key);
      },
    };
  }

  /** a process died: its subscriptions are gone */
  unsubscribeAll(bus: SimBus): void {
    for (const [key, sub] of this.subscriptions) if (sub.bus === bus) this.subscriptions.delete(key);
  }

  /**
   * Request/reply: the request is published to `subject` like any message; its subscriber's answer,
   * or "no responders", comes back after another trip — unless lost or cut on the way, when the
   * requester's clock times it out. A broadcast request nobody subscribes to is answered "no
   * responders"; else the first answer wins (the first `opts.accept` takes, when given). A requester whose process died hears nothing.
   */
  request(bus: SimBus, clock: SimClock, subject: string, data: Uint8Array, opts: RequestOptions): Promise<BusMessage> {
    const w = this.world;
    const receivers = this.receiversOf(subject);
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (settle: () => void) => {
        if (settled || !bus.alive) return;
        settled = true;
        clock.clearTimeout(timer);
        settle();
      };
      const timer = clock.setTimeout(() => finish(() => reject(new RequestTimeoutError(subject, opts.timeoutMs))), opts.timeoutMs);
      const noResponders = () => w.later(w.delay(), () => finish(() => reject(new NoRespondersError(subject))));
      if (receivers.length === 0 || receivers[0] === null) {
        noResponders();
        return;
      }
      this.publish(bus.nodeId, subject, data, (to) => ({
        respond: (answer) => {
          if (w.lost() || w.cut(to!, bus.nodeId)) return;
          w.later(w.delay(), () => {
            const reply: BusMessage = { subject, data: answer, respond: () => false };
            // RequestOptions.accept: an answer it passes over leaves the request waiting, as on the other buses
            if (settled || (opts.accept !== undefined && !opts.accept(reply))) return;
            finish(() => resolve(reply));
          });
        },
        noResponders,
      }));
    });
  }
}

/** one process's connection to the simulated network */
export class SimBus implements Bus {
  readonly kind = 'sim';
  private running = true;

  constructor(
    private readonly network: SimNetwork,
    private readonly clock: SimClock,
    readonly nodeId: string,
    readonly maxPayload: number,
  ) {}

  get alive(): boolean {
    return this.running;
  }

  get closed(): boolean {
    return !this.running;
  }

  publish(subject: string, data: Uint8Array): void {
    if (this.running) this.network.publish(this.nodeId, subject, data);
  }

  subscribe(subject: string, handler: (msg: BusMessage) => void): BusSubscription {
    if (!this.running) return { subject, unsubscribe: () => {} };
    return this.network.subscribe(this, subject, handler);
  }

  request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<BusMessage> {
    if (!this.running) return new Promise(() => {});
    return this.network.request(this, this.clock, subject, data, opts);
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  state(): BusState {
    return { kind: this.kind, connected: this.running, reconnects: 0 };
  }

  async close(): Promise<void> {
    this.stop();
  }

  /** the process died: it sends and hears nothing more */
  stop(): void {
    this.running = false;
    this.network.unsubscribeAll(this);
  }
}
