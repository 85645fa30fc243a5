// Ghost state: what the simulator knows independently of any node — each node's lineage (cluster
// id and identity generation), and per lineage who led which term, which entry sits where, what was
// committed and applied. The invariants are checked against it.
import type { Entry, PeerId } from '../../machines/raft/types.ts';

export const MAIN_CLUSTER = 'cluster-main';
export const FOREIGN_CLUSTER = 'cluster-foreign';
/** the real cluster ids (uuids, as the wire requires) behind the labels */
export const CLUSTER_IDS: Record<string, string> = {
  [MAIN_CLUSTER]: 'c1a55000-0000-7000-8000-000000000001',
  [FOREIGN_CLUSTER]: 'c1a55000-0000-7000-8000-000000000002',
};
export function clusterLabel(clusterId: string | null): string | null {
  if (clusterId === null) return null;
  return Object.keys(CLUSTER_IDS).find((label) => CLUSTER_IDS[label] === clusterId) ?? clusterId;
}

/** node n's id: a uuid, as the wire requires */
export function nodeUuid(n: number): string {
  return `00000000-0000-7000-8000-${n.toString(16).padStart(12, '0')}`;
}

/** a cluster at one identity generation: the unit every consensus invariant is checked within */
export function lineageKey(cluster: string, generation: number): string {
  return `${cluster}/g${generation}`;
}
export function clusterOfLineage(lineage: string): string {
  return lineage.slice(0, lineage.lastIndexOf('/g'));
}

/** a KV command as the simulator's clients propose it: a put's value starts with the proposal's id */
export interface SimCommand {
  op: 'put' | 'del';
  key: string;
  value?: string;
}

/** the proposal id a command carries (dels carry none: they are named by their key) */
export function commandId(command: SimCommand): string {
  return command.op === 'put' ? (command.value ?? '').split(':')[0]! : `del:${command.key}`;
}

export function entryKey(entry: Entry): string {
  if (entry.type === 'command') return commandId(entry.data as SimCommand);
  if (entry.type === 'noop') return 'noop';
  return `${entry.type}:${JSON.stringify(entry.data)}`;
}

export function describeEntry(entry: Entry): string {
  return `${entry.term}:${entry.index} ${entry.type === 'command' ? commandId(entry.data as SimCommand) : entry.type}`;
}

/** what the simulator knows one lineage has committed, independently of any node */
export class Ghost {
  readonly leaderOfTerm = new Map<number, PeerId>();
  readonly entryAt = new Map<string, string>();
  readonly predecessorTerm = new Map<string, number>();
  committedTerm: number[] = [0];
  committedInTerm: number[] = [0];
  appliedKey: Array<string | undefined> = [];
  /** the index each write (a put, by its proposal id) was applied at */
  readonly appliedAt = new Map<string, number>();
  /** the command applied at each index (reads are checked against it) */
  appliedCommand: Array<SimCommand | null | undefined> = [];
  commit = 0;

  /** a freshly bootstrapped cluster: its first configuration is committed at index 1 */
  static bootstrapped(): Ghost {
    const ghost = new Ghost();
    ghost.committedTerm[1] = 1;
    ghost.committedInTerm[1] = 1;
    ghost.commit = 1;
    ghost.appliedCommand[1] = null;
    return ghost;
  }

  /**
   * The lineage a recovery starts from this one: what was committed up to `keep`, nothing above.
   * `pending`: the committed entries the survivor had not applied yet, as the recovery keeps them in
   * its log — config entries among them become no-ops (runtime/store/recoveryPlan.ts), so the new
   * lineage holds and applies a no-op where the old one had the config.
   */
  derive(keep: number, pending: readonly Entry[] = []): Ghost {
    const next = new Ghost();
    // the ghost may know less than the survivor (commits learned inside a snapshot are not recorded)
    const known = Math.min(keep, this.commit);
    next.committedTerm = this.committedTerm.slice(0, known + 1);
    next.committedInTerm = this.committedInTerm.slice(0, known + 1);
    next.appliedKey = this.appliedKey.slice(0, keep + 1);
    next.appliedCommand = this.appliedCommand.slice(0, keep + 1);
    for (const [id, index] of this.appliedAt) if (index <= keep) next.appliedAt.set(id, index);
    next.commit = known;
    for (const [at, key] of this.entryAt) if (Number(at.slice(at.indexOf(':') + 1)) <= keep) next.entryAt.set(at, key);
    for (const [at, term] of this.predecessorTerm) if (Number(at.slice(at.indexOf(':') + 1)) <= keep) next.predecessorTerm.set(at, term);
    for (const entry of pending) {
      if (entry.index > keep) continue;
      const key = entryKey(entry);
      const at = `${entry.term}:${entry.index}`;
      if (next.entryAt.has(at)) next.entryAt.set(at, key);
      if (next.appliedKey[entry.index] !== undefined) {
        next.appliedKey[entry.index] = key;
        next.appliedCommand[entry.index] = entry.type === 'command' ? (entry.data as SimCommand) : null;
      }
    }
    return next;
  }

  /** index of an applied proposal (-1: none applied it) */
  indexOf(id: string): number {
    return this.appliedKey.lastIndexOf(id);
  }

  /**
   * The values `key` had after each index in [from, to], as far as the applied entries tell
   * (undefined: an index in between was applied by no node yet, so it cannot be told).
   */
  valuesOf(key: string, from: number, to: number): Set<string | null> | undefined {
    let value: string | null | undefined;
    let i = from;
    for (; i >= 1; i--) {
      const c = this.appliedCommand[i];
      if (c === undefined) return undefined;
      if (c !== null && c.key === key) {
        value = c.op === 'put' ? (c.value ?? null) : null;
        break;
      }
    }
    if (i === 0) value = null;
    const values = new Set<string | null>([value ?? null]);
    for (let j = from + 1; j <= to; j++) {
      const c = this.appliedCommand[j];
      if (c === undefined) return undefined;
      if (c !== null && c.key === key) values.add(c.op === 'put' ? (c.value ?? null) : null);
    }
    return values;
  }
}
