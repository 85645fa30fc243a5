// The options of `startController` (the library's entry point), apart from the controller itself
// so that its parts in actors/controller/ can read them without importing the facade.
import type { InspectionEvent } from 'xstate';
import { validNodeName } from '../../machines/identity/index.ts';
import { conclaveError } from '../errors.ts';
import { MIN_SECRET_BYTES, readJoinSecret } from '../join/autoJoin.ts';
import type { Logger } from '../log/logger.ts';
import type { CheckedDir } from '../store/examine.ts';
import { type AnyReplicatedState, validateReplicatedState } from '../state/host.ts';
import type { InProcessBus, NatsTransportOptions } from '../transport/index.ts';
import { uuidSchema } from '../wire/codec.ts';
import { unusableOperatorKeys } from '../wire/operatorAuth.ts';
import { checkRaftTiming, DEFAULT_RAFT, type RaftTiming } from './config.ts';

export type TransportOption = { nats: NatsTransportOptions } | { bus: InProcessBus };

export interface ControllerOptions {
  name: string;
  dataDir: string;
  /** subject prefix; default 'conclave' */
  prefix?: string;
  /** default: the process-wide in-process bus, so controllers in one process see each other */
  transport?: TransportOption;
  /** automatic initialization source (seed JSON or snapshot file), used only on a blank store */
  initFrom?: string;
  /** names the leader adds as soon as they answer, retried with backoff until they are voters */
  initialMembers?: string[];
  /** how long a joining node waits for its first state before it is blank again (default 60 s) */
  joinTimeoutMs?: number;
  raft?: Partial<RaftTiming>;
  logger?: Logger;
  /** observe every XState inspection event of this controller's actors */
  inspect?: (event: InspectionEvent) => void;
  /** LMDB map size; tests use a small one to exercise disk-full */
  mapSizeBytes?: number;
  /**
   * the store's read-only checks, already started for this `dataDir` and `name` (checkBeforeOpen,
   * runtime/store): `conclave run` starts them before it loads the controller; default made at start
   */
  checkedStore?: Promise<CheckedDir>;
  /**
   * Auto-join. On a member: with a secret, the leader admits nodes that prove it (voters up to
   * `maxVoters`, default 5, learners beyond); without one auto-join is off. On a blank node: with
   * `cluster`, it announces itself on `<prefix>.discover` until that cluster adds it.
   */
  join?: { cluster?: string; secret?: string | Uint8Array; secretFile?: string; maxVoters?: number };
  /** a member without a leader for longer than this warns, and keeps warning at this period (default 10 s) */
  warnWhenLeaderlessForMs?: number;
  /**
   * the replicated state: the host's own (`apply`/`query`/`snapshot`/`restore`, or
   * `replicatedMachine(machine)`); default the built-in key-value state. A data dir keeps the kind
   * it was created with.
   */
  state?: AnyReplicatedState;
  /**
   * the node's clock: the consensus runtime's (raft ticks, liveness, deferred work) and the
   * controller's (retries, health, auto-join, its waits for a leader or a phase); default the
   * process's. The demo passes a pausable one per node, to pause a node as SIGSTOP would.
   */
  clock?: ControllerClock;
  /** the node's randomness, uniformly in [0, 1) (its raft election timeouts); default Math.random */
  random?: () => number;
  /**
   * Operators: this node refuses every client request that changes the cluster (init, propose, cluster
   * add/remove/transfer, snapshot save) unless it is signed with one of these operator keys
   * (UNAUTHORIZED). Without keys, a node on NATS takes no such request at all; one on the in-process
   * bus (only its own process speaks there) takes them unsigned. Read-only requests stay open, unless
   * `reads` is 'signed': then they need an operator key or one of `readKeys` (which may sign reads
   * only). Give every member the same keys. A key is the public key `conclave operator keygen` prints
   * (raw Ed25519, base64url). The controller's own methods (`propose`, `cluster.add`, …) are the host
   * app's and need no key.
   */
  operators?: { keys: string[]; readKeys?: string[]; reads?: 'open' | 'signed' };
}

/** the shape of actors/ports.ts's Clock, spelled out here: runtime/config imports nothing from actors/ */
export interface ControllerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  soon(fn: () => void): void;
}

function joinSecretOf(join: ControllerOptions['join']): Uint8Array | null {
  if (join?.secret !== undefined) {
    const secret = typeof join.secret === 'string' ? Buffer.from(join.secret, 'utf8') : join.secret;
    if (secret.length < MIN_SECRET_BYTES) throw conclaveError('CONFIG', `join.secret is ${secret.length} bytes; at least ${MIN_SECRET_BYTES} are required`);
    return secret;
  }
  return join?.secretFile ? readJoinSecret(join.secretFile) : null;
}

/** what is checked before anything is opened: the name, the join options, raft timing, the state option */
export function checkOptions(opts: ControllerOptions): Uint8Array | null {
  if (!validNodeName(opts.name)) {
    throw conclaveError('CONFIG', `node name ${JSON.stringify(opts.name)} is invalid: it must match ^[a-z0-9][a-z0-9_-]{0,62}$`);
  }
  if (opts.join?.cluster !== undefined && !uuidSchema.safeParse(opts.join.cluster).success) {
    throw conclaveError('CONFIG', `join.cluster ${JSON.stringify(opts.join.cluster)} is not a cluster id (a UUID as printed by \`conclave init\`)`);
  }
  if (opts.join?.maxVoters !== undefined && !(Number.isInteger(opts.join.maxVoters) && opts.join.maxVoters >= 1)) {
    throw conclaveError('CONFIG', `join.maxVoters must be a whole number ≥ 1, got ${opts.join.maxVoters}`);
  }
  checkRaftTiming({ ...DEFAULT_RAFT, ...opts.raft });
  checkOperators(opts.operators);
  const joinSecret = joinSecretOf(opts.join);
  if (opts.state !== undefined) validateReplicatedState(opts.state);
  return joinSecret;
}

/** ControllerOptions.operators as given at start or to Controller.setOperators: CONFIG when unusable */
export function checkOperators(operators: ControllerOptions['operators']): void {
  if (operators === undefined) return;
  if (!Array.isArray(operators.keys)) throw conclaveError('CONFIG', 'operators.keys must be a list of operator public keys', { key: 'operators.keys' });
  const bad = unusableOperatorKeys([...operators.keys, ...(operators.readKeys ?? [])]);
  if (operators.reads !== undefined && operators.reads !== 'open' && operators.reads !== 'signed') {
    throw conclaveError('CONFIG', `operators.reads must be "open" or "signed", got ${JSON.stringify(operators.reads)}`, { key: 'operators.reads' });
  }
  if (bad.length > 0) throw conclaveError('CONFIG', `operators: ${JSON.stringify(bad[0])} is not an operator public key (43 characters of base64url, as printed by \`conclave operator keygen\`)`, { key: 'operators.keys' });
}
