// Controller configuration: defaults < environment < config file < flags. One schema validates the
// file and the merged result, so an unknown key or a wrong type is a usage error naming the key.
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { MEMBER_KEY_PATTERN } from '../wire/peerSignature.ts';
import { LOG_LEVELS, type LogLevel } from '../log/levels.ts';
import { commonFromEnv, mergeNatsLayers, type NatsFlags, natsLayer, natsLayerFromEnv, natsLayerFromFlags, type NatsSettings, PREFIX_PATTERN, PREFIX_RULE, splitServers } from './common.ts';

// the settings every command shares, zod-free for the CLI's client commands
export * from './common.ts';

// the one ConfigError (runtime/errors.ts): a usage error, exit 2, naming the key at fault
export { ConfigError } from '../errors.ts';

const nodeName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must match ^[a-z0-9][a-z0-9_-]{0,62}$');
const prefix = z.string().regex(PREFIX_PATTERN, PREFIX_RULE);
const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be HOST:PORT, e.g. 127.0.0.1:7420');

export const natsConfigSchema = z.strictObject({
  servers: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  user: z.string().optional(),
  pass: z.string().optional(),
  token: z.string().optional(),
  nkeyFile: z.string().optional(),
  credsFile: z.string().optional(),
  inboxPrefix: z.string().regex(PREFIX_PATTERN, PREFIX_RULE).optional(),
  tls: z
    .strictObject({ caFile: z.string().optional(), certFile: z.string().optional(), keyFile: z.string().optional() })
    .optional(),
});

export const raftConfigSchema = z.strictObject({
  heartbeatMs: z.number().int().min(5).max(10_000).optional(),
  electionTimeoutMs: z.number().int().min(20).max(60_000).optional(),
  snapshotEvery: z.number().int().min(10).optional(),
  snapshotEveryBytes: z.number().int().min(1024 * 1024).optional(),
  maxEntriesPerMessage: z.number().int().min(1).max(100_000).optional(),
  maxInflight: z.number().int().min(1).max(1024).optional(),
});

/** the smallest store.maxBytes: a fresh store and a few entries fit in it */
export const MIN_STORE_MAX_BYTES = 1024 * 1024;

export const storeConfigSchema = z.strictObject({
  maxBytes: z
    .number('must be a number of bytes, e.g. 1073741824 (1 GiB)')
    .int('must be a whole number of bytes, e.g. 1073741824 (1 GiB)')
    .min(MIN_STORE_MAX_BYTES, `must be at least ${MIN_STORE_MAX_BYTES} (1 MiB), e.g. 1073741824 (1 GiB)`)
    .max(Number.MAX_SAFE_INTEGER, 'is too large (at most 2^53 - 1)')
    .optional(),
});

/** The config file's shape: every key optional here; required ones are checked after merging. */
export const configFileSchema = z.strictObject({
  name: nodeName.optional(),
  dataDir: z.string().min(1).optional(),
  prefix: prefix.optional(),
  nats: natsConfigSchema.optional(),
  initFrom: z.string().min(1).optional(),
  initialMembers: z.array(nodeName).optional(),
  joinSecretFile: z.string().min(1).optional(),
  join: z
    .strictObject({
      cluster: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a cluster id (UUID)').optional(),
      secretFile: z.string().min(1).optional(),
      maxVoters: z.number().int().min(1).max(99).optional(),
    })
    .optional(),
  health: z.strictObject({ warnWhenLeaderlessFor: z.number().int().min(100).optional() }).optional(),
  inspect: hostPort.optional(),
  metrics: hostPort.optional(),
  inspectPublic: z.boolean().optional(),
  log: z.strictObject({ level: z.enum(LOG_LEVELS as [LogLevel, ...LogLevel[]]).optional() }).optional(),
  raft: raftConfigSchema.optional(),
  store: storeConfigSchema.optional(),
  /** the operators' public keys; client requests that change the cluster must be signed with one (runtime/wire/operatorAuth.ts) */
  operators: z
    .strictObject({
      keys: z
        .array(z.string().regex(MEMBER_KEY_PATTERN, 'must be an operator public key: the 43 characters of base64url that `conclave operator keygen` prints'))
        .min(1, 'must list at least one operator public key (`conclave operator keygen --out FILE` prints one)')
        .optional(),
      /** a file of operator public keys, one a line (what `conclave operator keygen` prints); with `keys`, both count */
      keysFile: z.string().min(1).optional(),
      readKeys: z.array(z.string().regex(MEMBER_KEY_PATTERN, 'must be a public key: the 43 characters of base64url that `conclave operator keygen` prints')).optional(),
      reads: z.enum(['open', 'signed'], 'must be "open" (reads need no key) or "signed" (reads need an operator or read-only key)').optional(),
    })
    .refine((o) => o.keys !== undefined || o.keysFile !== undefined, { message: 'must give "keys" (a list of operator public keys) or "keysFile" (a file of them)' })
    .optional(),
});
export type ConfigFile = z.infer<typeof configFileSchema>;

export interface RaftTiming {
  heartbeatMs: number;
  electionTimeoutMs: number;
  snapshotEvery: number;
  /** compact once the log applied since the last snapshot holds this many bytes of entries */
  snapshotEveryBytes: number;
  maxEntriesPerMessage: number;
  maxInflight: number;
}

export const DEFAULT_RAFT: RaftTiming = {
  heartbeatMs: 50,
  electionTimeoutMs: 500,
  snapshotEvery: 10_000,
  snapshotEveryBytes: 64 * 1024 * 1024,
  maxEntriesPerMessage: 512,
  maxInflight: 64,
};


export interface ControllerConfig {
  name: string;
  dataDir: string;
  prefix: string;
  nats: NatsSettings;
  initFrom?: string;
  initialMembers: string[];
  joinSecretFile?: string;
  /** auto-join: the cluster to join (blank nodes), the secret (joinSecretFile when absent), maxVoters (leader) */
  join: { cluster?: string; secretFile?: string; maxVoters?: number };
  /** ms without a leader before a member warns */
  warnWhenLeaderlessFor?: number;
  inspect?: string;
  /** serve Prometheus metrics at http://HOST:PORT/metrics */
  metrics?: string;
  /** the inspector may listen on an address other than loopback */
  inspectPublic: boolean;
  log: { level: LogLevel };
  raft: RaftTiming;
  /** store.maxBytes: writes that would grow the store beyond it are refused (FULL); none by default */
  store: { maxBytes?: number };
  /** client requests that change the cluster must be signed with one of these operator keys (none: over NATS, no change is taken) */
  operators?: { keys: string[]; readKeys?: string[]; reads?: 'open' | 'signed' };
}

/** the environment variable that names `conclave run`'s file of operator public keys (as --operators does) */
export const OPERATORS_ENV = 'CONCLAVE_OPERATORS';

/**
 * The operator public keys in `file`: one a line, as `conclave operator keygen` prints them; blank
 * lines and `#` comments are skipped. A line that is not a key, or a file with none, is a usage error.
 */
export function readOperatorKeysFile(file: string, key: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the operator keys file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { key });
  }
  const keys: string[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    if (!MEMBER_KEY_PATTERN.test(line)) {
      throw new ConfigError(`${file}:${i + 1}: ${JSON.stringify(line.slice(0, 60))} is not an operator public key (the 43 characters of base64url that \`conclave operator keygen\` prints)`, { key });
    }
    keys.push(line);
  }
  if (keys.length === 0) throw new ConfigError(`${file} lists no operator public key (\`conclave operator keygen --out ops.key > ops.pub\` makes one)`, { key });
  return keys;
}




/** Read and validate a JSON config file; errors name the file and the key. */
export function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    // a FIFO (or a device) would block the read forever: only a regular file is a config file
    const stat = statSync(path);
    if (!stat.isFile()) {
      const kind = stat.isDirectory() ? 'a directory' : stat.isFIFO() ? 'a FIFO' : stat.isSocket() ? 'a socket' : 'a device';
      throw new ConfigError(`config file ${path} is not a regular file (it is ${kind}); pass the path of a JSON file`, { key: 'config' });
    }
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { key: 'config' });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`, { key: 'config' });
  }
  return validateConfigObject(raw, `config file ${path}`);
}

export function validateConfigObject(raw: unknown, where: string): ConfigFile {
  const parsed = configFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      const base = issue.path.join('.');
      const key = [base, issue.keys[0]].filter(Boolean).join('.');
      throw new ConfigError(`${where}: unknown key "${key}" (see the configuration reference in README.md)`, { key });
    }
    const key = issue.path.join('.') || '(root)';
    throw new ConfigError(`${where}: "${key}": ${issue.message}`, { key });
  }
  return parsed.data;
}

export interface RunFlags extends NatsFlags {
  config?: string;
  name?: string;
  dataDir?: string;
  initFrom?: string;
  initialMembers?: string;
  joinSecretFile?: string;
  joinCluster?: string;
  /** a file of operator public keys (replaces the config file's) */
  operators?: string;
  inspect?: string;
  inspectPublic?: boolean;
  metrics?: string;
  logLevel?: string;
  prefix?: string;
}

/** Merge defaults < env < file < flags into a complete, validated controller configuration. */
export function resolveRunConfig(flags: RunFlags, env: NodeJS.ProcessEnv): ControllerConfig {
  const file: ConfigFile = flags.config ? readConfigFile(flags.config) : {};
  const fromFlags = validateConfigObject(
    dropUndefined({
      name: flags.name,
      dataDir: flags.dataDir,
      initFrom: flags.initFrom,
      initialMembers: flags.initialMembers === undefined ? undefined : splitServers(flags.initialMembers),
      joinSecretFile: flags.joinSecretFile,
      join: flags.joinCluster === undefined ? undefined : { cluster: flags.joinCluster },
      inspect: flags.inspect,
      metrics: flags.metrics,
      log: flags.logLevel === undefined ? undefined : { level: flags.logLevel },
      prefix: flags.prefix,
    }),
    'flags',
  );
  const name = fromFlags.name ?? file.name;
  if (!name) throw new ConfigError('a node name is required: pass --name NAME or set "name" in the config file', { key: 'name' });
  const envLevel = env.CONCLAVE_LOG_LEVEL;
  if (envLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(envLevel)) {
    throw new ConfigError(`CONCLAVE_LOG_LEVEL=${envLevel} is not one of ${LOG_LEVELS.join(', ')}`, { key: 'log.level' });
  }
  const common = commonFromEnv(env, {});
  const pfx = fromFlags.prefix ?? file.prefix ?? common.prefix;
  const configDir = flags.config ? resolve(flags.config, '..') : process.cwd();
  const fromConfigFile = (p: string | undefined) => (p === undefined ? undefined : resolve(configDir, p));
  const { servers: fileServers, tls: fileTls, ...fileNats } = file.nats ?? {};
  const natsFromFile = natsLayer(fileServers, {
    ...fileNats,
    nkeyFile: fromConfigFile(fileNats.nkeyFile),
    credsFile: fromConfigFile(fileNats.credsFile),
    tls: { caFile: fromConfigFile(fileTls?.caFile), certFile: fromConfigFile(fileTls?.certFile), keyFile: fromConfigFile(fileTls?.keyFile) },
  });
  return {
    name,
    dataDir: resolve(fromFlags.dataDir ?? fromConfigFile(file.dataDir) ?? resolve('conclave-data', name)),
    prefix: pfx,
    nats: mergeNatsLayers(natsLayerFromEnv(env), natsFromFile, natsLayerFromFlags(flags)),
    initFrom: fromFlags.initFrom ? resolve(fromFlags.initFrom) : fromConfigFile(file.initFrom),
    initialMembers: fromFlags.initialMembers ?? file.initialMembers ?? [],
    joinSecretFile: fromFlags.joinSecretFile ? resolve(fromFlags.joinSecretFile) : fromConfigFile(file.joinSecretFile),
    join: dropUndefined({
      cluster: fromFlags.join?.cluster ?? file.join?.cluster,
      secretFile: fromConfigFile(file.join?.secretFile),
      maxVoters: file.join?.maxVoters,
    }),
    warnWhenLeaderlessFor: file.health?.warnWhenLeaderlessFor,
    inspect: fromFlags.inspect ?? file.inspect,
    inspectPublic: flags.inspectPublic ?? file.inspectPublic ?? false,
    metrics: fromFlags.metrics ?? file.metrics,
    log: { level: (fromFlags.log?.level ?? file.log?.level ?? (envLevel as LogLevel | undefined) ?? 'info') as LogLevel },
    raft: checkRaftTiming({ ...DEFAULT_RAFT, ...dropUndefined(file.raft ?? {}) }),
    store: dropUndefined({ maxBytes: file.store?.maxBytes }),
    ...operatorsOf(flags, file, env, fromConfigFile),
  };
}

/** the operator keys: --operators FILE, else the config file's, else $CONCLAVE_OPERATORS (a file) */
function operatorsOf(flags: RunFlags, file: ConfigFile, env: NodeJS.ProcessEnv, fromConfigFile: (p: string | undefined) => string | undefined): Pick<ControllerConfig, 'operators'> {
  if (flags.operators !== undefined) return { operators: { ...fileOperatorsRest(file), keys: readOperatorKeysFile(resolve(flags.operators), 'operators') } };
  if (file.operators !== undefined) {
    const listed = file.operators.keysFile === undefined ? [] : readOperatorKeysFile(fromConfigFile(file.operators.keysFile) as string, 'operators.keysFile');
    return { operators: { ...fileOperatorsRest(file), keys: [...(file.operators.keys ?? []), ...listed] } };
  }
  const fromEnv = env[OPERATORS_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return { operators: { keys: readOperatorKeysFile(resolve(fromEnv), OPERATORS_ENV) } };
  return {};
}

const fileOperatorsRest = (file: ConfigFile) => dropUndefined({ readKeys: file.operators?.readKeys, reads: file.operators?.reads });

/** a follower must hear a few heartbeats per election timeout, or it starts elections against a live leader */
export function checkRaftTiming(raft: RaftTiming): RaftTiming {
  if (raft.electionTimeoutMs < 2 * raft.heartbeatMs) {
    throw new ConfigError(
      `raft.heartbeatMs (${raft.heartbeatMs}) must be at most half of raft.electionTimeoutMs (${raft.electionTimeoutMs}): a follower must hear several heartbeats per election timeout (e.g. 50 and 500)`,
      { key: 'raft.heartbeatMs' },
    );
  }
  return raft;
}

function dropUndefined<T extends Record<string, unknown>>(obj: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out as T;
}
