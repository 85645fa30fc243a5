// The transport seam: the controller talks to a Bus; NATS and the in-process bus implement it with
// the same subject semantics (tokens separated by '.', wildcards '*' and '>', queue groups,
// request/reply with a timeout and a distinct "no responders" error).

export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** the reply subject when the sender made a request */
  readonly reply?: string;
  /** answer a request; returns false when the message carried no reply subject */
  respond(data: Uint8Array): boolean;
}

export interface BusSubscription {
  readonly subject: string;
  unsubscribe(): void;
}

export interface SubscribeOptions {
  /** deliver each message to one member of the queue group instead of to all */
  queue?: string;
}

export interface RequestOptions {
  timeoutMs: number;
  /**
   * Which replies to take (it must not throw): a reply it passes over is dropped and the request keeps
   * waiting for another until the timeout — so whoever answers first cannot decide it (a join offer's
   * answer must prove the join secret). Absent: the first reply.
   */
  accept?: (reply: BusMessage) => boolean;
}

export interface Bus {
  /** a short name for logs: 'nats' or 'in-process' */
  readonly kind: string;
  publish(subject: string, data: Uint8Array): void;
  /** handlers are called one message at a time; an exception in a handler is caught and reported */
  subscribe(subject: string, handler: (msg: BusMessage) => void, opts?: SubscribeOptions): BusSubscription;
  /** rejects with NoRespondersError when nobody listens, RequestTimeoutError when nobody answers in time */
  request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<BusMessage>;
  /** resolves once everything published so far has reached the server (in-process: immediately) */
  flush(): Promise<void>;
  close(): Promise<void>;
  readonly closed: boolean;
  /** the largest payload publish/request accepts, when known (NATS: the server's max_payload) */
  readonly maxPayload?: number;
  /**
   * publish() queues the write and the client writes it to its socket in a microtask (the NATS
   * client): a caller that then blocks the thread (a synchronous disk write) yields a microtask turn
   * first, or what it published waits for the block to end
   */
  readonly deferredWrites?: boolean;
  /** the connection as `status` shows it */
  state(): BusState;
}

/** `bus` in `status`: which transport, whether it is connected now, to which server, how many reconnects so far */
export interface BusState {
  kind: string;
  connected: boolean;
  /** NATS: the server currently (or last) connected to */
  server?: string;
  reconnects: number;
}

export class NoRespondersError extends Error {
  readonly code = 'NO_RESPONDERS';
  constructor(readonly subject: string) {
    super(`no responders on ${subject}: nothing is listening there`);
    this.name = 'NoRespondersError';
  }
}

export class RequestTimeoutError extends Error {
  readonly code = 'TIMEOUT';
  constructor(
    readonly subject: string,
    readonly timeoutMs: number,
  ) {
    super(`request on ${subject} timed out after ${timeoutMs} ms`);
    this.name = 'RequestTimeoutError';
  }
}

export class BusClosedError extends Error {
  readonly code = 'CLOSED';
  constructor() {
    super('the bus connection is closed');
    this.name = 'BusClosedError';
  }
}

export class PayloadTooLargeError extends Error {
  readonly code = 'MAX_PAYLOAD';
  constructor(
    readonly subject: string,
    readonly size: number,
    readonly maxPayload: number,
  ) {
    super(`payload of ${size} bytes on ${subject} exceeds the maximum of ${maxPayload} bytes`);
    this.name = 'PayloadTooLargeError';
  }
}

export class InvalidSubjectError extends Error {
  readonly code = 'BAD_SUBJECT';
  constructor(
    readonly subject: string,
    readonly reason: string,
  ) {
    super(`invalid subject ${JSON.stringify(subject)}: ${reason}`);
    this.name = 'InvalidSubjectError';
  }
}

/** the server refused a publish or subscription by the connection's permissions */
export class PermissionDeniedError extends Error {
  readonly code = 'PERMISSION';
  constructor(readonly detail: string) {
    super(
      `NATS refused it: ${detail}. The NATS user lacks a permission; if its replies are confined to an inbox prefix, give that prefix with --nats-inbox-prefix (or NATS_INBOX_PREFIX)`,
    );
    this.name = 'PermissionDeniedError';
  }
}

/** connecting to the bus failed (server down, refused, bad credentials) */
export class BusConnectError extends Error {
  readonly code = 'CONNECT';
  constructor(
    readonly servers: readonly string[],
    readonly reason: string,
    options?: { cause?: unknown; authentication?: boolean },
  ) {
    super(
      `cannot connect to NATS at ${servers.join(',')}: ${reason}. ${
        options?.authentication
          ? 'Give the credentials this server expects: --nats-user and NATS_PASSWORD, --nats-token, --nats-nkey, --nats-creds or TLS certificates (or the NATS_* variables)'
          : 'Is nats-server running? Set --nats or NATS_URL'
      }`,
      options,
    );
    this.name = 'BusConnectError';
  }
}
