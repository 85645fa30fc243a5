// The in-process bus: one hub (the shared subject space) and any number of connections to it, with
// NATS subject semantics so the same contract tests pass against both transports.
import {
  type Bus,
  BusClosedError,
  type BusMessage,
  type BusState,
  type BusSubscription,
  NoRespondersError,
  PayloadTooLargeError,
  type RequestOptions,
  RequestTimeoutError,
  type SubscribeOptions,
} from './types.ts';
import { copyBytes, SubjectTrie, validatePublishSubject, validateQueueName, validateSubscribeSubject } from './subjects.ts';

export type BusErrorHandler = (err: unknown, subject: string) => void;

export interface InProcessBusOptions {
  /** largest accepted payload in bytes; default 1 MiB, like nats-server */
  maxPayload?: number;
  /** called with every exception thrown by a handler (default: ignored) */
  onError?: BusErrorHandler;
}

export interface InProcessConnectOptions {
  /** overrides the hub's onError for this connection's handlers */
  onError?: BusErrorHandler;
}

export interface InProcessBus {
  readonly kind: 'in-process';
  readonly maxPayload: number;
  /** one connection per controller; closing it removes only its own subscriptions */
  connect(name?: string, opts?: InProcessConnectOptions): Bus;
  /** closes every connection */
  close(): Promise<void>;
  /** how many subscriptions are live across all connections (for tests and the inspector) */
  readonly subscriptionCount: number;
}

export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
const INBOX_PREFIX = '_INBOX.';
/** deliveries per macrotask before yielding, so timers and I/O still run under a publish storm */
const DRAIN_BUDGET = 10_000;
const CACHE_LIMIT = 4096;

interface Sub {
  readonly id: number;
  readonly subject: string;
  readonly queue: string | undefined;
  readonly conn: Connection;
  readonly handler: (msg: BusMessage) => void;
  active: boolean;
}

// --- messages and delivery ---------------------------------------------------------------------

class InProcessMessage implements BusMessage {
  constructor(
    readonly subject: string,
    readonly data: Uint8Array,
    readonly reply: string | undefined,
    private readonly conn: Connection,
  ) {}

  respond(data: Uint8Array): boolean {
    if (this.reply === undefined) return false;
    this.conn.publish(this.reply, data);
    return true;
  }
}

interface PendingRequest {
  readonly subject: string;
  readonly conn: Connection;
  resolve(msg: BusMessage): void;
  reject(err: unknown): void;
  timer: ReturnType<typeof setTimeout>;
  /** RequestOptions.accept: a reply it passes over leaves the request waiting */
  accept?: (reply: BusMessage) => boolean;
}

type Delivery =
  | { readonly sub: Sub; readonly msg: BusMessage; readonly pending?: undefined }
  | { readonly sub?: undefined; readonly msg: BusMessage; readonly pending: PendingRequest };

class Hub implements InProcessBus {
  readonly kind = 'in-process' as const;
  readonly maxPayload: number;
  readonly onError: BusErrorHandler | undefined;
  private readonly trie = new SubjectTrie<Sub>();
  /** subject → matching subscriptions; cleared whenever the subscription set changes */
  private readonly cache = new Map<string, Sub[]>();
  /** reply inboxes of outstanding requests: kept out of the trie so requests do not clear the cache */
  readonly inboxes = new Map<string, PendingRequest>();
  private readonly connections = new Set<Connection>();
  private readonly queueCursor = new Map<string, number>();
  private queue: Array<Delivery | undefined> = [];
  private head = 0;
  private scheduled = false;
  private nextSubId = 1;
  private nextConnId = 1;

  constructor(opts: InProcessBusOptions) {
    const max = opts.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    if (!Number.isInteger(max) || max <= 0) throw new Error(`maxPayload must be a positive integer, got ${max}`);
    this.maxPayload = max;
    this.onError = opts.onError;
  }

  get subscriptionCount(): number {
    return this.trie.size;
  }

  connect(name?: string, opts: InProcessConnectOptions = {}): Bus {
    const id = this.nextConnId++;
    const conn = new Connection(this, id, name ?? `conn${id}`, opts.onError ?? this.onError);
    this.connections.add(conn);
    return conn;
  }

  async close(): Promise<void> {
    await Promise.all([...this.connections].map((c) => c.close()));
  }

  forget(conn: Connection): void {
    this.connections.delete(conn);
  }

  addSub(conn: Connection, subject: string, handler: (msg: BusMessage) => void, queue: string | undefined): Sub {
    const sub: Sub = { id: this.nextSubId++, subject, queue, conn, handler, active: true };
    this.trie.insert(sub);
    this.cache.clear();
    return sub;
  }

  removeSub(sub: Sub): void {
    if (!sub.active) return;
    sub.active = false;
    this.trie.remove(sub);
    this.cache.clear();
  }

  matches(subject: string): Sub[] {
    const hit = this.cache.get(subject);
    if (hit) return hit;
    const found = this.trie.match(subject);
    // reply subjects are unique per request: caching them would only evict useful entries
    if (!subject.startsWith(INBOX_PREFIX)) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(subject, found);
    }
    return found;
  }

  hasInterest(subject: string): boolean {
    return this.matches(subject).length > 0 || this.inboxes.has(subject);
  }

  /** route one message; the data is copied per recipient so nobody can mutate what another got */
  route(from: Connection, subject: string, data: Uint8Array, reply: string | undefined): void {
    const subs = this.matches(subject);
    let groups: Map<string, Sub[]> | undefined;
    for (const sub of subs) {
      if (sub.queue === undefined) {
        this.enqueue({ sub, msg: new InProcessMessage(subject, copyBytes(data), reply, sub.conn) });
      } else {
        groups ??= new Map();
        const members = groups.get(sub.queue);
        if (members) members.push(sub);
        else groups.set(sub.queue, [sub]);
      }
    }
    if (groups) {
      for (const [queue, members] of groups) {
        // round-robin: an even split, and deterministic for tests (NATS picks at random)
        const n = this.queueCursor.get(queue) ?? 0;
        this.queueCursor.set(queue, n + 1);
        const sub = members[n % members.length]!;
        this.enqueue({ sub, msg: new InProcessMessage(subject, copyBytes(data), reply, sub.conn) });
      }
    }
    const pending = this.inboxes.get(subject);
    if (pending) this.enqueue({ pending, msg: new InProcessMessage(subject, copyBytes(data), reply, from) });
  }

  private enqueue(d: Delivery): void {
    this.queue.push(d);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drain);
    }
  }

  // one global FIFO keeps per-publisher order for every subscription
  private readonly drain = (): void => {
    this.scheduled = false;
    let budget = DRAIN_BUDGET;
    while (this.head < this.queue.length && budget-- > 0) {
      const d = this.queue[this.head]!;
      this.queue[this.head] = undefined; // let delivered payloads be collected
      this.head++;
      if (d.pending) {
        const p = d.pending;
        // the request may already have timed out or its connection closed
        if (this.inboxes.get(d.msg.subject) !== p) continue;
        if (p.accept && !p.accept(d.msg)) continue;
        this.inboxes.delete(d.msg.subject);
        clearTimeout(p.timer);
        p.resolve(d.msg);
        continue;
      }
      const sub = d.sub;
      if (!sub.active) continue;
      try {
        sub.handler(d.msg);
      } catch (err) {
        sub.conn.reportError(err, d.msg.subject);
      }
    }
    if (this.head >= this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else {
      if (this.head > 1024) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.scheduled = true;
      setImmediate(this.drain);
    }
  };
}

class Connection implements Bus {
  readonly kind = 'in-process';
  private readonly subs = new Set<Sub>();
  private readonly requests = new Set<string>();
  private nextInbox = 1;
  private isClosed = false;

  constructor(
    private readonly hub: Hub,
    private readonly id: number,
    readonly name: string,
    private readonly onError: BusErrorHandler | undefined,
  ) {}

  state(): BusState {
    return { kind: this.kind, connected: !this.isClosed, reconnects: 0 };
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get maxPayload(): number {
    return this.hub.maxPayload;
  }

  reportError(err: unknown, subject: string): void {
    if (!this.onError) return;
    try {
      this.onError(err, subject);
    } catch {
      // an error reporter that throws must not take the hub down either
    }
  }

  private check(subject: string, data: Uint8Array): void {
    if (this.isClosed) throw new BusClosedError();
    validatePublishSubject(subject);
    if (!(data instanceof Uint8Array)) throw new TypeError(`payload on ${subject} must be a Uint8Array`);
    if (data.byteLength > this.hub.maxPayload) {
      throw new PayloadTooLargeError(subject, data.byteLength, this.hub.maxPayload);
    }
  }

  publish(subject: string, data: Uint8Array): void {
    this.check(subject, data);
    this.hub.route(this, subject, data, undefined);
  }

  subscribe(subject: string, handler: (msg: BusMessage) => void, opts: SubscribeOptions = {}): BusSubscription {
    if (this.isClosed) throw new BusClosedError();
    validateSubscribeSubject(subject);
    if (opts.queue !== undefined) validateQueueName(opts.queue);
    const sub = this.hub.addSub(this, subject, handler, opts.queue);
    this.subs.add(sub);
    return {
      subject,
      unsubscribe: () => {
        this.subs.delete(sub);
        this.hub.removeSub(sub);
      },
    };
  }

  request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<BusMessage> {
    try {
      this.check(subject, data);
      if (!(opts.timeoutMs > 0)) throw new Error(`request timeoutMs must be > 0, got ${opts.timeoutMs}`);
    } catch (err) {
      return Promise.reject(err);
    }
    // like NATS with headers: nobody subscribed means an immediate, distinct error
    if (!this.hub.hasInterest(subject)) return Promise.reject(new NoRespondersError(subject));
    const inbox = `${INBOX_PREFIX}${this.id}.${this.nextInbox++}`;
    return new Promise<BusMessage>((resolve, reject) => {
      const done = () => {
        this.requests.delete(inbox);
      };
      const pending: PendingRequest = {
        subject,
        conn: this,
        resolve: (m) => {
          done();
          resolve(m);
        },
        reject: (e) => {
          done();
          reject(e);
        },
        timer: setTimeout(() => {
          if (this.hub.inboxes.get(inbox) !== pending) return;
          this.hub.inboxes.delete(inbox);
          pending.reject(new RequestTimeoutError(subject, opts.timeoutMs));
        }, opts.timeoutMs),
        ...(opts.accept ? { accept: opts.accept } : {}),
      };
      this.hub.inboxes.set(inbox, pending);
      this.requests.add(inbox);
      this.hub.route(this, subject, data, inbox);
    });
  }

  async flush(): Promise<void> {
    if (this.isClosed) throw new BusClosedError();
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const sub of this.subs) this.hub.removeSub(sub);
    this.subs.clear();
    for (const inbox of [...this.requests]) {
      const p = this.hub.inboxes.get(inbox);
      if (!p) continue;
      this.hub.inboxes.delete(inbox);
      clearTimeout(p.timer);
      p.reject(new BusClosedError());
    }
    this.requests.clear();
    this.hub.forget(this);
  }
}

export function createInProcessBus(opts: InProcessBusOptions = {}): InProcessBus {
  return new Hub(opts);
}
