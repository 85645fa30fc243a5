// The NATS transport: the Bus over the `nats` v2 client. Subjects are validated with the same rules as
// the in-process bus, and client errors are mapped onto the transport's error classes.
import { readFile } from 'node:fs/promises';
import {
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  ErrorCode,
  nkeyAuthenticator,
  type Msg,
  type NatsConnection,
  NatsError,
  RequestStrategy,
} from 'nats';
import { conclaveError } from '../errors.ts';
import { credentialsFromUrls } from './natsUrl.ts';
import { copyBytes, validatePublishSubject, validateQueueName, validateSubscribeSubject } from './subjects.ts';
import {
  type Bus,
  BusClosedError,
  BusConnectError,
  type BusMessage,
  type BusState,
  type BusSubscription,
  NoRespondersError,
  PayloadTooLargeError,
  PermissionDeniedError,
  type RequestOptions,
  RequestTimeoutError,
  type SubscribeOptions,
} from './types.ts';

export interface NatsTlsOptions {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface NatsStatus {
  /** 'disconnect' | 'reconnect' | 'reconnecting' | 'update' | 'ldm' | 'error' | 'pingTimer' | … */
  type: string;
  data?: unknown;
}

export interface NatsTransportOptions {
  /** one URL, a comma-separated list, or an array; credentials in a URL (`nats://user:pass@host`, `nats://token@host`) are used when no other credential is given */
  servers: string | string[];
  /** at most one way to authenticate: user and pass, token, nkeyFile or credsFile */
  user?: string;
  pass?: string;
  token?: string;
  /** a file holding an nkey seed (`SU…`), for a server that lists the nkey's public key */
  nkeyFile?: string;
  /** a .creds file (JWT + nkey seed), as written by `nsc` */
  credsFile?: string;
  tls?: NatsTlsOptions;
  /** the subject prefix of reply inboxes (default `_INBOX`), so NATS permissions can confine each user's replies */
  inboxPrefix?: string;
  /** the connection name the server shows in its monitoring */
  name?: string;
  /** default -1: keep reconnecting forever, a controller must never give up on its bus */
  maxReconnectAttempts?: number;
  /** wait between reconnect attempts to one server (default 150 ms, plus up to 100 ms of jitter; the client's own default is 2 s) */
  reconnectTimeWaitMs?: number;
  /** connect timeout in ms (client default 20 s) */
  timeoutMs?: number;
  /** how long close() waits for draining before it closes hard (default 2 s) */
  drainTimeoutMs?: number;
  onStatus?: (s: NatsStatus) => void;
  /** handler exceptions, async subscription errors (e.g. permissions) and a connection lost for good */
  onError?: (err: unknown, subject: string) => void;
}

const DEFAULT_SERVER = 'nats://127.0.0.1:4222';
const RECONNECT_WAIT_MS = 150;
const RECONNECT_JITTER_MS = 100;

export function parseServers(servers: string | string[]): string[] {
  const list = (Array.isArray(servers) ? servers : servers.split(','))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  return list.length > 0 ? list : [DEFAULT_SERVER];
}

function errorCode(err: unknown): string | undefined {
  return err instanceof NatsError ? err.code : undefined;
}

function reasonOf(err: unknown): string {
  const code = errorCode(err);
  if (code === ErrorCode.ConnectionRefused) return 'connection refused';
  if (code === ErrorCode.ConnectionTimeout || code === ErrorCode.Timeout) return 'connection timed out';
  if (code === ErrorCode.AuthorizationViolation) return 'authorization violation (check user/pass, token or creds)';
  if (code === ErrorCode.AuthenticationExpired) return 'credentials expired';
  return err instanceof Error ? err.message : String(err);
}

export async function connectNats(opts: NatsTransportOptions): Promise<Bus> {
  const { servers, credentials: fromUrl } = credentialsFromUrls(parseServers(opts.servers));
  const given = [
    opts.user !== undefined || opts.pass !== undefined ? 'user and password' : null,
    opts.token !== undefined ? 'token' : null,
    opts.nkeyFile !== undefined ? 'nkey' : null,
    opts.credsFile !== undefined ? 'creds file' : null,
  ].filter((g) => g !== null);
  if (given.length > 1) throw conclaveError('CONFIG', `NATS credentials: give one way to authenticate, not ${given.join(' and ')}`);
  const auth = given.length > 0 ? opts : { ...opts, ...fromUrl };
  if ((auth.user === undefined) !== (auth.pass === undefined)) throw conclaveError('CONFIG', 'NATS credentials: a user needs a password and a password a user');
  const options: ConnectionOptions = {
    servers,
    name: opts.name,
    user: auth.user,
    pass: auth.pass,
    token: auth.token,
    maxReconnectAttempts: opts.maxReconnectAttempts ?? -1,
    // a stack trace captured per request costs more than the request on loopback
    noAsyncTraces: true,
  };
  if (opts.inboxPrefix !== undefined) options.inboxPrefix = opts.inboxPrefix;
  // a control plane resumes as soon as its server is back: a short wait, jittered so that many
  // nodes do not reconnect in lockstep
  options.reconnectTimeWait = opts.reconnectTimeWaitMs ?? RECONNECT_WAIT_MS;
  options.reconnectJitter = RECONNECT_JITTER_MS;
  if (opts.timeoutMs !== undefined) options.timeout = opts.timeoutMs;
  if (opts.tls) options.tls = { ...opts.tls };
  if (opts.credsFile) options.authenticator = credsAuthenticator(await readSecretFile(opts.credsFile, 'NATS credentials file'));
  if (opts.nkeyFile) options.authenticator = nkeyAuthenticator(new TextEncoder().encode((await readSecretFile(opts.nkeyFile, 'NATS nkey seed file')).toString().trim()));
  let nc: NatsConnection;
  try {
    nc = await connect(options);
  } catch (err) {
    const code = errorCode(err);
    throw new BusConnectError(servers, reasonOf(err), { cause: err, authentication: code === ErrorCode.AuthorizationViolation || code === ErrorCode.AuthenticationExpired });
  }
  return new NatsBus(nc, opts);
}

/** a credential file's bytes; a file that cannot be read is a configuration mistake, not an unreachable server */
async function readSecretFile(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw conclaveError('CONFIG', `cannot read the ${what} ${file}: ${reasonOf(err)}; check the path and its permissions`);
  }
}

class NatsBus implements Bus {
  readonly kind = 'nats';
  private closing = false;
  /** false between a 'disconnect' and the next 'reconnect' status */
  private connected = true;
  private reconnects = 0;
  private stopStatus: (() => void) | undefined;
  private readonly statusLoop: Promise<void>;
  private readonly onError: ((err: unknown, subject: string) => void) | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: NatsTransportOptions,
  ) {
    this.onError = opts.onError;
    this.statusLoop = this.watchStatus();
    // the client closes by itself only when it gives up reconnecting: report that
    void nc.closed().then((err) => {
      this.stopStatus?.();
      if (err && !this.closing) this.report(err, '');
    });
  }

  get closed(): boolean {
    return this.closing || this.nc.isClosed();
  }

  /** nats.js queues what is published and writes it to the socket in a microtask */
  readonly deferredWrites = true;

  get maxPayload(): number | undefined {
    return this.nc.info?.max_payload;
  }

  state(): BusState {
    const server = this.nc.getServer();
    return { kind: this.kind, connected: this.connected && !this.closed, server: server.includes('://') ? server : `nats://${server}`, reconnects: this.reconnects };
  }

  private async watchStatus(): Promise<void> {
    const onStatus = this.opts.onStatus;
    const iter = this.nc.status();
    // nats.js v2 never ends the status iterators it hands out, not even on close: stop it ourselves
    const stoppable = iter as Partial<{ stop(): void }>;
    if (typeof stoppable.stop === 'function') this.stopStatus = () => stoppable.stop?.();
    for await (const s of iter) {
      const type = String(s.type);
      if (type === 'disconnect') this.connected = false;
      else if (type === 'reconnect') {
        this.connected = true;
        this.reconnects++;
      }
      if (!onStatus) continue;
      try {
        onStatus({ type, data: s.data });
      } catch (err) {
        this.report(err, '');
      }
    }
  }

  private report(err: unknown, subject: string): void {
    if (!this.onError) return;
    try {
      this.onError(err, subject);
    } catch {
      // a throwing reporter must not break the client's read loop
    }
  }

  private mapError(err: unknown, subject: string, size: number, timeoutMs?: number): unknown {
    switch (errorCode(err)) {
      case ErrorCode.NoResponders:
        return new NoRespondersError(subject);
      case ErrorCode.Timeout:
        return new RequestTimeoutError(subject, timeoutMs ?? 0);
      case ErrorCode.ConnectionClosed:
      case ErrorCode.ConnectionDraining:
        return new BusClosedError();
      case ErrorCode.MaxPayloadExceeded:
        return new PayloadTooLargeError(subject, size, this.maxPayload ?? 0);
      case ErrorCode.PermissionsViolation:
        return new PermissionDeniedError((err as Error).message.replace(/^'|'$/g, '').replace(/^Permissions Violation for (Subscription|Publish)/, (m) => m.toLowerCase()));
      default:
        return err;
    }
  }

  publish(subject: string, data: Uint8Array): void {
    // while draining, handlers may still answer what is in flight: only a closed client refuses
    if (this.nc.isClosed()) throw new BusClosedError();
    validatePublishSubject(subject);
    try {
      // the client queues the caller's buffer until its next flush (or a reconnect): copy it, so a
      // publisher reusing its buffer cannot change what subscribers get
      this.nc.publish(subject, copyBytes(data));
    } catch (err) {
      throw this.mapError(err, subject, data.byteLength);
    }
  }

  subscribe(subject: string, handler: (msg: BusMessage) => void, opts: SubscribeOptions = {}): BusSubscription {
    if (this.closed) throw new BusClosedError();
    validateSubscribeSubject(subject);
    if (opts.queue !== undefined) validateQueueName(opts.queue);
    let sub: ReturnType<NatsConnection['subscribe']>;
    try {
      sub = this.nc.subscribe(subject, {
        queue: opts.queue,
        // a callback, not an async iterator: delivered synchronously from the socket reader, in order
        callback: (err, m) => {
          if (err) {
            this.report(err, subject);
            return;
          }
          try {
            handler(this.wrap(m));
          } catch (e) {
            // an exception escaping here would reach the client's protocol parser
            this.report(e, m.subject);
          }
        },
      });
    } catch (err) {
      throw this.mapError(err, subject, 0);
    }
    return {
      subject,
      unsubscribe: () => {
        if (!this.nc.isClosed()) sub.unsubscribe();
      },
    };
  }

  private wrap(m: Msg): BusMessage {
    const reply = m.reply ? m.reply : undefined;
    return {
      subject: m.subject,
      data: m.data,
      reply,
      respond: (data: Uint8Array): boolean => {
        if (reply === undefined) return false;
        this.publish(reply, data);
        return true;
      },
    };
  }

  async request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<BusMessage> {
    if (this.closed) throw new BusClosedError();
    validatePublishSubject(subject);
    if (!(opts.timeoutMs > 0)) throw new Error(`request timeoutMs must be > 0, got ${opts.timeoutMs}`);
    if (opts.accept) return this.requestAccepted(subject, data, opts.timeoutMs, opts.accept);
    try {
      const m = await this.nc.request(subject, copyBytes(data), { timeout: opts.timeoutMs });
      return this.wrap(m);
    } catch (err) {
      throw this.mapError(err, subject, data.byteLength, opts.timeoutMs);
    }
  }

  /** a request that hears every reply until `accept` takes one (on an inbox of its own, so none is lost to the first) */
  private async requestAccepted(subject: string, data: Uint8Array, timeoutMs: number, accept: (reply: BusMessage) => boolean): Promise<BusMessage> {
    try {
      const replies = await this.nc.requestMany(subject, copyBytes(data), { maxWait: timeoutMs, strategy: RequestStrategy.Timer, noMux: true });
      for await (const m of replies) {
        const reply = this.wrap(m);
        if (accept(reply)) return reply;
      }
    } catch (err) {
      throw this.mapError(err, subject, data.byteLength, timeoutMs);
    }
    throw new RequestTimeoutError(subject, timeoutMs);
  }

  async flush(): Promise<void> {
    if (this.closed) throw new BusClosedError();
    try {
      await this.nc.flush();
    } catch (err) {
      throw this.mapError(err, '', 0);
    }
  }

  async close(): Promise<void> {
    if (this.closing) {
      await this.nc.closed();
      return;
    }
    this.closing = true;
    if (!this.nc.isClosed() && !this.connected) {
      // nothing can be drained without a server: do not wait for a reconnect that may never come
      await this.nc.close().catch(() => {});
    } else if (!this.nc.isClosed()) {
      // drain delivers what is in flight; when the server is gone it would wait forever, so bound it
      const limit = this.opts.drainTimeoutMs ?? 2000;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), limit);
      });
      const outcome = await Promise.race([this.nc.drain().then(() => 'drained' as const), timedOut]).catch(
        () => 'failed' as const,
      );
      clearTimeout(timer);
      if (outcome !== 'drained' && !this.nc.isClosed()) await this.nc.close().catch(() => {});
    }
    await this.nc.closed();
    if (this.stopStatus) {
      this.stopStatus();
      await this.statusLoop.catch(() => {});
    }
  }
}
