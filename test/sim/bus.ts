// The simulated network and each process's bus on it (the member's MemberBus port): messages are
// real encoded bytes on `<prefix>.node.<name>.peer` subjects, delayed, dropped, duplicated and so
// reordered by the seed, cut by partitions, and refused over the bus's max payload, as NATS refuses
// them. Admin requests (`whois`, which a node asks before it believes it is stale) are answered by
// the simulator in the controller's place.
import type { MemberBus } from '../../actors/ports.ts';
import type { BusMessage, BusSubscription, RequestOptions } from '../../runtime/transport/types.ts';
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
  now(): number;
  /** a message the bus refuses (over the max payload): recorded as a violation */
  tooLarge(delivery: Delivery, bytes: number): void;
  /** the controller's answer to an admin request on `name` (null: nobody answers there) */
  answerAdmin(name: string, data: Uint8Array): Uint8Array | null;
  /** a message is handed to its subscriber (the ghost lineage of its sender is in scope meanwhile) */
  delivering(delivery: Delivery | null): void;
  /** the member threw out of its bus handler: a crash in production */
  handlerThrew(delivery: Delivery, err: unknown): void;
}

interface Subscription {
  bus: SimBus;
  handler(msg: BusMessage): void;
}

export class SimNetwork {
  private readonly subscriptions = new Map<string, Subscription>();
  largestMessage = 0;

  constructor(private readonly world: NetworkWorld) {}

  private receiverOf(subject: string): string | null {
    const parts = subject.split('.');
    return parts.length === 4 && parts[1] === 'node' ? this.world.nodeIdOf(parts[2]!) : null;
  }

  publish(from: string, subject: string, data: Uint8Array): void {
    const w = this.world;
    const delivery: Delivery = { subject, data, from, to: this.receiverOf(subject), lineage: w.senderLineage(from) };
    if (data.byteLength > this.largestMessage) this.largestMessage = data.byteLength;
    if (data.byteLength > w.maxPayload) {
      w.tooLarge(delivery, data.byteLength);
      throw new Error(`message of ${data.byteLength} bytes exceeds the max payload of ${w.maxPayload}`);
    }
    if (w.lost()) return;
    w.scheduleDelivery(w.now() + w.delay(), delivery);
    if (w.duplicate()) w.scheduleDelivery(w.now() + w.delay(), delivery);
  }

  /** a delivery event is due: hand it to whoever subscribes now */
  deliver(delivery: Delivery): boolean {
    const sub = this.subscriptions.get(delivery.subject);
    if (sub === undefined || delivery.to === null || this.world.cut(delivery.from, delivery.to)) return false;
    const msg: BusMessage = { subject: delivery.subject, data: delivery.data, respond: () => false };
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
    const sub: Subscription = { bus, handler };
    this.subscriptions.set(subject, sub);
    return {
      subject,
      unsubscribe: () => {
        if (this.subscriptions.get(subject) === sub) this.subscriptions.delete(subject);
      },
    };
  }

  /** a process died: its subscriptions are gone */
  unsubscribeAll(bus: SimBus): void {
    for (const [subject, sub] of this.subscriptions) if (sub.bus === bus) this.subscriptions.delete(subject);
  }

  /** request/reply to a node's admin subject, answered (or not) after a round trip */
  request(bus: SimBus, clock: SimClock, subject: string, data: Uint8Array, opts: RequestOptions): Promise<BusMessage> {
    const w = this.world;
    const to = this.receiverOf(subject);
    const name = subject.split('.')[2] ?? '';
    return new Promise((resolve, reject) => {
      if (to === null || w.cut(bus.nodeId, to) || w.lost()) {
        clock.setTimeout(() => reject(new RequestTimeoutError(subject, opts.timeoutMs)), opts.timeoutMs);
        return;
      }
      clock.setTimeout(() => {
        const answer = w.answerAdmin(name, data);
        if (answer === null) reject(new NoRespondersError(subject));
        else resolve({ subject, data: answer, respond: () => false });
      }, w.delay() + w.delay());
    });
  }
}

/** one process's connection to the simulated network */
export class SimBus implements MemberBus {
  private alive = true;

  constructor(
    private readonly network: SimNetwork,
    private readonly clock: SimClock,
    readonly nodeId: string,
    readonly maxPayload: number,
  ) {}

  publish(subject: string, data: Uint8Array): void {
    if (this.alive) this.network.publish(this.nodeId, subject, data);
  }

  subscribe(subject: string, handler: (msg: BusMessage) => void): BusSubscription {
    if (!this.alive) return { subject, unsubscribe: () => {} };
    return this.network.subscribe(this, subject, handler);
  }

  request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<BusMessage> {
    if (!this.alive) return new Promise(() => {});
    return this.network.request(this, this.clock, subject, data, opts);
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** the process died: it sends and hears nothing more */
  stop(): void {
    this.alive = false;
    this.network.unsubscribeAll(this);
  }
}
