// An in-process bus whose nodes can be cut off from the others and reconnected, or paused and
// resumed: the demo's faults.
// - Cut off: a node's connection drops what it publishes and what it would receive, and its requests
//   time out, as on a network that lost its packets; subjects that `passes` accepts (the inspection
//   stream) still flow, so the page keeps watching the node think on its own. What is dropped is
//   counted, each way, and said on reconnect.
// - Paused (as SIGSTOP pauses a process): nothing it publishes leaves and nothing sent to it is
//   handled — both are held, in order, as a stopped process's socket buffers hold them, up to
//   MAX_HELD each way (beyond that they are dropped and counted, as a full buffer would); its own
//   requests wait. On resume what it sent goes out first, then what it was sent is handled. Its
//   timers are the node's clock's business (actors/pausableClock.ts), not the bus's.
import type { BusErrorHandler, InProcessBus, InProcessConnectOptions } from './inProcess.ts';
import { type Bus, type BusMessage, type BusState, type BusSubscription, type RequestOptions, RequestTimeoutError, type SubscribeOptions } from './types.ts';

/** messages held per direction for one paused node */
export const MAX_HELD = 10_000;

export interface HeldTraffic {
  /** how long the node was paused */
  pausedMs: number;
  /** what it published while paused, sent on resume */
  sent: number;
  /** what reached it while paused, handled on resume */
  delivered: number;
  /** what did not fit in the held buffers */
  dropped: number;
}

/** what a cut-off node lost */
export interface LostTraffic {
  /** how long it has been (or was) cut off */
  cutMs: number;
  /** what it published (requests included) that nobody got */
  sent: number;
  /** what was sent to it that its subscriptions did not get */
  received: number;
}

export interface CutOffBus extends InProcessBus {
  /** drop all traffic between `name` and the others (except what `passes`) until `reconnect` */
  cutOff(name: string): void;
  /** end the cut; what it lost while cut off (zeros when it was not cut off) */
  reconnect(name: string): LostTraffic;
  isCutOff(name: string): boolean;
  /** what `name` has lost so far while cut off, or null when it is not cut off */
  lost(name: string): LostTraffic | null;
  /** hold all of `name`'s traffic, both ways, until `resume` */
  pause(name: string): void;
  /** release what was held for `name` (its sends first, then what it was sent) */
  resume(name: string): HeldTraffic;
  isPaused(name: string): boolean;
}

/** one paused node's held traffic */
class Hold {
  readonly since = Date.now();
  readonly outbound: Array<() => void> = [];
  readonly inbound: Array<{ subject: string; deliver: () => void }> = [];
  dropped = 0;
  private release!: () => void;
  readonly released = new Promise<void>((resolve) => (this.release = resolve));

  send(fn: () => void): void {
    if (this.outbound.length < MAX_HELD) this.outbound.push(fn);
    else this.dropped++;
  }

  receive(subject: string, deliver: () => void): void {
    if (this.inbound.length < MAX_HELD) this.inbound.push({ subject, deliver });
    else this.dropped++;
  }

  /** run what was held; a handler that throws is reported as the hub reports it (onError), and the rest still run */
  resume(onError: BusErrorHandler | undefined): HeldTraffic {
    this.release();
    const report = (err: unknown, subject: string) => onError?.(err, subject);
    for (const send of this.outbound) {
      try {
        send();
      } catch (err) {
        report(err, 'publish held while paused');
      }
    }
    for (const { subject, deliver } of this.inbound) {
      try {
        deliver();
      } catch (err) {
        report(err, subject);
      }
    }
    return { pausedMs: Date.now() - this.since, sent: this.outbound.length, delivered: this.inbound.length, dropped: this.dropped };
  }
}

/** one cut-off node's losses */
class Cut {
  readonly since = Date.now();
  sent = 0;
  received = 0;

  report(): LostTraffic {
    return { cutMs: Date.now() - this.since, sent: this.sent, received: this.received };
  }
}

export function withCutOff(hub: InProcessBus, passes: (subject: string) => boolean): CutOffBus {
  const cut = new Map<string, Cut>();
  const held = new Map<string, Hold>();
  const errorHandlers = new Map<string, BusErrorHandler | undefined>();
  return {
    kind: hub.kind,
    get maxPayload() {
      return hub.maxPayload;
    },
    get subscriptionCount() {
      return hub.subscriptionCount;
    },
    close: () => hub.close(),
    connect: (name?: string, opts?: InProcessConnectOptions) => {
      if (name === undefined) return hub.connect(name, opts);
      errorHandlers.set(name, opts?.onError);
      return new CutOffConnection(hub.connect(name, opts), { cut: () => cut.get(name), hold: () => held.get(name), passes });
    },
    cutOff: (name) => {
      if (!cut.has(name)) cut.set(name, new Cut());
    },
    reconnect: (name) => {
      const lost = cut.get(name)?.report() ?? { cutMs: 0, sent: 0, received: 0 };
      cut.delete(name);
      return lost;
    },
    isCutOff: (name) => cut.has(name),
    lost: (name) => cut.get(name)?.report() ?? null,
    pause: (name) => {
      if (!held.has(name)) held.set(name, new Hold());
    },
    resume: (name) => {
      const hold = held.get(name);
      held.delete(name);
      return hold ? hold.resume(errorHandlers.get(name)) : { pausedMs: 0, sent: 0, delivered: 0, dropped: 0 };
    },
    isPaused: (name) => held.has(name),
  };
}

interface Faults {
  /** the losses while cut off; undefined when it is not */
  cut(): Cut | undefined;
  /** the held traffic while paused */
  hold(): Hold | undefined;
  passes(subject: string): boolean;
}

class CutOffConnection implements Bus {
  readonly kind: string;

  constructor(
    private readonly inner: Bus,
    private readonly faults: Faults,
  ) {
    this.kind = inner.kind;
  }

  /** the cut this subject's traffic is lost to, if any */
  private lostTo(subject: string): Cut | undefined {
    const cut = this.faults.cut();
    return cut && !this.faults.passes(subject) ? cut : undefined;
  }

  publish(subject: string, data: Uint8Array): void {
    const cut = this.lostTo(subject);
    if (cut) {
      cut.sent++;
      return;
    }
    const hold = this.faults.hold();
    if (hold) hold.send(() => this.inner.publish(subject, data));
    else this.inner.publish(subject, data);
  }

  subscribe(subject: string, handler: (msg: BusMessage) => void, opts?: SubscribeOptions): BusSubscription {
    let active = true;
    const sub = this.inner.subscribe(
      subject,
      (msg) => {
        const cut = this.lostTo(msg.subject);
        if (cut) {
          cut.received++;
          return;
        }
        const hold = this.faults.hold();
        if (!hold) return handler(msg);
        hold.receive(msg.subject, () => {
          if (active) handler(msg);
        });
      },
      opts,
    );
    return {
      subject: sub.subject,
      unsubscribe: () => {
        active = false;
        sub.unsubscribe();
      },
    };
  }

  async request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<BusMessage> {
    // a paused node's request leaves when it resumes (its timeout has not started: its clock is stopped too)
    const hold = this.faults.hold();
    if (hold) await hold.released;
    const cut = this.lostTo(subject);
    if (!cut) return this.inner.request(subject, data, opts);
    // nothing reaches the others: the request goes unanswered
    cut.sent++;
    return new Promise((_, reject) => setTimeout(() => reject(new RequestTimeoutError(subject, opts.timeoutMs)), opts.timeoutMs));
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  get closed(): boolean {
    return this.inner.closed;
  }

  get maxPayload(): number | undefined {
    return this.inner.maxPayload;
  }

  get deferredWrites(): boolean | undefined {
    return this.inner.deferredWrites;
  }

  state(): BusState {
    const state = this.inner.state();
    return this.faults.cut() ? { ...state, connected: false } : state;
  }
}
