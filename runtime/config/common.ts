// The settings every command shares (--nats, --prefix, or the environment), without zod: a client
// command (`conclave status`) needs only these, and loading zod would cost more than the command.
import { ConfigError } from '../errors.ts';

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
export const DEFAULT_PREFIX = 'conclave';

/** NATS subject tokens without wildcards; config.ts's schema checks the config file's prefix with it too */
export const PREFIX_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
export const PREFIX_RULE = 'must be NATS subject tokens without wildcards, e.g. "conclave"';

export interface NatsSettings {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
  credsFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

/** Settings every command shares (CLI flags or env). */
export interface CommonSettings {
  nats: NatsSettings;
  prefix: string;
}

export function splitServers(value: string | string[]): string[] {
  const list = Array.isArray(value) ? value : value.split(',');
  return list.map((s) => s.trim()).filter((s) => s.length > 0);
}

export function commonFromEnv(env: NodeJS.ProcessEnv, flags: { nats?: string; prefix?: string }): CommonSettings {
  const servers = splitServers(flags.nats ?? env.NATS_URL ?? DEFAULT_NATS_URL);
  if (servers.length === 0) throw new ConfigError('--nats: no server URL given', { key: 'nats' });
  const pfx = flags.prefix ?? env.CONCLAVE_PREFIX ?? DEFAULT_PREFIX;
  if (!PREFIX_PATTERN.test(pfx)) throw new ConfigError(`prefix ${JSON.stringify(pfx)} ${PREFIX_RULE}`, { key: 'prefix' });
  return { nats: { servers }, prefix: pfx };
}
