// An in-process bus whose nodes can be cut off from the others and reconnected: the demo's
// partitions. A cut-off node's connection drops what it publishes and what it would receive, and
// its requests time out, as on a network that lost its packets; subjects that `passes` accepts
// (the inspection stream) still flow, so the page keeps watching the node think on its own.
import type { InProcessBus, InProcessConnectOptions } from './inProcess.ts';
import { type Bus, type BusMessage, type BusState, type BusSubscription, type RequestOptions, RequestTimeoutError, type SubscribeOptions } from './types.ts';

export interface CutOffBus extends InProcessBus {
  /** drop all traffic between `name` and the others (except what `passes`) until `reconnect` */
  cutOff(name: string): void;
  reconnect(name: string): void;
  isCutOff(name: string): boolean;
}

export function withCutOff(hub: InProcessBus, passes: (subject: string) => boolean): CutOffBus {
  const cut = new Set<string>();
  return {
    kind: hub.kind,
    get maxPayload() {
      return hub.maxPayload;
    },
    get subscriptionCount() {
      return hub.subscriptionCount;
    },
    close: () => hub.close(),
    connect: (name?: string, opts?: InProcessConnectOptions) => (name === undefined ? hub.connect(name, opts) : new CutOffConnection(hub.connect(name, opts), () => cut.has(name), passes)),
    cutOff: (name) => void cut.add(name),
    reconnect: (name) => void cut.delete(name),
    isCutOff: (name) => cut.has(name),
  };
}

class CutOffConnection implements Bus {
  readonly kind: string;

  constructor(
    private readonly inner: Bus,
    private readonly isCut: () => boolean,
    private readonly passes: (subject: string) => boolean,
  ) {
    this.kind = inner.kind;
  }

  private dropped(subject: string): boolean {
    return this.isCut() && !this.passes(subject);
  }

  publish(subject: string, data: Uint8Array): void {
    if (!this.dropped(subject)) this.inner.publish(subject, data);
  }

  subscribe(subject: string, handler: (msg: BusMessage) => void, opts?: SubscribeOptions): BusSubscription {
    return this.inner.subscribe(subject, (msg) => {
      if (!this.dropped(msg.subject)) handler(msg);
    }, opts);
  }

  request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<BusMessage> {
    if (!this.dropped(subject)) return this.inner.request(subject, data, opts);
    // nothing reaches the others: the request goes unanswered
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

  state(): BusState {
    const state = this.inner.state();
    return this.isCut() ? { ...state, connected: false } : state;
  }
}
