// Connecting a controller to its bus: the process-wide in-process bus by default, or NATS with its
// connection losses and returns logged.
import type { Logger } from '../log/logger.ts';
import { RateLimitedLog } from '../log/rateLimit.ts';
import { createInProcessBus, type InProcessBus } from './inProcess.ts';
import { connectNats, type NatsStatus, type NatsTransportOptions } from './nats.ts';
import type { Bus } from './types.ts';

let processBus: InProcessBus | null = null;
/** The embedded default transport: one in-process bus shared by every controller of this process. */
export function defaultInProcessBus(): InProcessBus {
  processBus ??= createInProcessBus();
  return processBus;
}

/** `transport`: NATS, or an in-process bus (default: the process-wide one) */
export async function connect(name: string, transport: { nats: NatsTransportOptions } | { bus: InProcessBus } = { bus: defaultInProcessBus() }, logger: Logger): Promise<Bus> {
  // a handler that throws is a bug, but the input that made it throw may come from anyone: rate-limited
  const failures = new RateLimitedLog(logger);
  const onError = (err: unknown, subject: string) => failures.warn('handler-failed', { node: name, err, subject }, 'message handler failed');
  if ('bus' in transport) return transport.bus.connect(name, { onError });
  return connectNats({ name: `conclave-${name}`, onError, onStatus: natsStatusLogger(logger.child({ node: name, component: 'bus' }), failures), ...transport.nats });
}

/** the NATS connection dropping (warn) and coming back (info), with the server and how long it was gone; errors the server sends (rate-limited) */
function natsStatusLogger(log: Logger, failures: RateLimitedLog): (s: NatsStatus) => void {
  let lostAt: number | null = null;
  return (s) => {
    if (s.type === 'error') {
      const code = String(s.data);
      const why = code === 'PERMISSIONS_VIOLATION' ? ": a publish or subscription of this node is not allowed to its NATS user; check the user's permissions (docs/security.md)" : '';
      failures.warn(`nats-error:${code}`, { code }, `the NATS server reported an error (${code})${why}`);
      return;
    }
    const server = typeof s.data === 'string' ? s.data : undefined;
    if (s.type === 'disconnect') {
      lostAt = Date.now();
      log.warn({ server }, `lost the NATS connection to ${server ?? 'the server'}; reconnecting`);
    } else if (s.type === 'reconnect') {
      const downMs = lostAt === null ? undefined : Date.now() - lostAt;
      lostAt = null;
      log.info({ server, downMs }, `reconnected to NATS at ${server ?? 'the server'}${downMs === undefined ? '' : ` after ${downMs} ms`}`);
    }
  };
}
