// The settings every command shares (--nats, --prefix, or the environment), without zod: a client
// command (`conclave status`) needs only these, and loading zod would cost more than the command.
import { ConfigError } from '../errors.ts';
import { credentialsFromUrls } from '../transport/natsUrl.ts';

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
export const DEFAULT_PREFIX = 'conclave';

/** NATS subject tokens without wildcards; config.ts's schema checks the config file's prefix with it too */
export const PREFIX_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
export const PREFIX_RULE = 'must be NATS subject tokens without wildcards, e.g. "conclave"';

/** NATS credentials: at most one way (user and pass, token, nkey seed file, creds file) */
export interface NatsCredentials {
  user?: string;
  pass?: string;
  token?: string;
  nkeyFile?: string;
  credsFile?: string;
}

export interface NatsSettings extends NatsCredentials {
  /** without credentials: those in a URL were moved to the credential fields */
  servers: string[];
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  inboxPrefix?: string;
}

/** The NATS flags every command that connects has (see cli/natsFlags.ts). */
export interface NatsFlags {
  nats?: string;
  natsUser?: string;
  natsPassword?: string;
  natsToken?: string;
  natsNkey?: string;
  natsCreds?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
  natsInboxPrefix?: string;
}

/** one source of NATS settings: the environment, a config file or the flags */
export type NatsLayer = Partial<NatsSettings>;

/** NATS_URL, NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_NKEY, NATS_CREDS, NATS_CA, NATS_CERT, NATS_KEY, NATS_INBOX_PREFIX */
export function natsLayerFromEnv(env: NodeJS.ProcessEnv): NatsLayer {
  return natsLayer(env.NATS_URL, {
    user: env.NATS_USER,
    pass: env.NATS_PASSWORD,
    token: env.NATS_TOKEN,
    nkeyFile: env.NATS_NKEY,
    credsFile: env.NATS_CREDS,
    tls: { caFile: env.NATS_CA, certFile: env.NATS_CERT, keyFile: env.NATS_KEY },
    inboxPrefix: env.NATS_INBOX_PREFIX,
  });
}

export function natsLayerFromFlags(flags: NatsFlags): NatsLayer {
  return natsLayer(flags.nats, {
    user: flags.natsUser,
    pass: flags.natsPassword,
    token: flags.natsToken,
    nkeyFile: flags.natsNkey,
    credsFile: flags.natsCreds,
    tls: { caFile: flags.natsTlsCa, certFile: flags.natsTlsCert, keyFile: flags.natsTlsKey },
    inboxPrefix: flags.natsInboxPrefix,
  });
}

const CREDENTIAL_KEYS = ['user', 'pass', 'token', 'nkeyFile', 'credsFile'] as const;

/** one source's settings: its server URLs (credentials in them taken out) and its other fields, the absent ones left out */
export function natsLayer(urls: string | string[] | undefined, rest: Omit<NatsLayer, 'servers'>): NatsLayer {
  const out: NatsLayer = {};
  for (const [k, v] of Object.entries(rest)) if (v !== undefined && k !== 'tls') (out as Record<string, unknown>)[k] = v;
  const tls = Object.fromEntries(Object.entries(rest.tls ?? {}).filter(([, v]) => v !== undefined));
  if (Object.keys(tls).length > 0) out.tls = tls;
  if (urls === undefined) return out;
  const servers = splitServers(urls);
  if (servers.length === 0) throw new ConfigError('no NATS server URL given (in --nats, NATS_URL or nats.servers of the config file)', { key: 'nats' });
  const { servers: stripped, credentials } = credentialsFromUrls(servers);
  out.servers = stripped;
  // credentials given as such beat those in the same source's URL
  if (credentials !== null && !CREDENTIAL_KEYS.some((k) => out[k] !== undefined)) Object.assign(out, credentials);
  return out;
}

/**
 * The settings from sources in rising precedence (e.g. environment, config file, flags): the
 * servers, each TLS file and the inbox prefix from the last source that gives them; the
 * credentials all from the last source that gives any, so that two sources never mix into a
 * pair that belongs to neither.
 */
export function mergeNatsLayers(...layers: NatsLayer[]): NatsSettings {
  const out: NatsSettings = { servers: [DEFAULT_NATS_URL] };
  let tls: NonNullable<NatsSettings['tls']> = {};
  for (const l of layers) {
    if (l.servers !== undefined) out.servers = l.servers;
    if (l.inboxPrefix !== undefined) out.inboxPrefix = l.inboxPrefix;
    tls = { ...tls, ...l.tls };
    if (CREDENTIAL_KEYS.some((k) => l[k] !== undefined)) {
      for (const k of CREDENTIAL_KEYS) delete out[k];
      for (const k of CREDENTIAL_KEYS) if (l[k] !== undefined) out[k] = l[k];
    }
  }
  if (Object.keys(tls).length > 0) out.tls = tls;
  if (out.inboxPrefix !== undefined && !PREFIX_PATTERN.test(out.inboxPrefix)) {
    throw new ConfigError(`NATS inbox prefix ${JSON.stringify(out.inboxPrefix)} ${PREFIX_RULE.replace('"conclave"', '"_INBOX_ops"')}`, { key: 'nats.inboxPrefix' });
  }
  return out;
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

export function commonFromEnv(env: NodeJS.ProcessEnv, flags: NatsFlags & { prefix?: string }): CommonSettings {
  const nats = mergeNatsLayers(natsLayerFromEnv(env), natsLayerFromFlags(flags));
  const pfx = flags.prefix ?? env.CONCLAVE_PREFIX ?? DEFAULT_PREFIX;
  if (!PREFIX_PATTERN.test(pfx)) throw new ConfigError(`prefix ${JSON.stringify(pfx)} ${PREFIX_RULE}`, { key: 'prefix' });
  return { nats, prefix: pfx };
}
