// Apply: committed entries to the replicated state (the built-in KV, or the host's state), answer
// the proposers waiting on them, and follow the configuration and cluster id they carry.
import type { Entry, Membership } from '../machines/raft/types.ts';
import { ApplyFailedError, conclaveError } from '../runtime/errors.ts';
import type { RateLimitedLog } from '../runtime/log/rateLimit.ts';
import type { AnyReplicatedState } from '../runtime/state/host.ts';
import { applyKvBatch } from '../runtime/state/kv.ts';
import type { AppliedState, HostAppliedState } from './appliedState.ts';
import type { MemberEvents } from './memberTypes.ts';
import type { MemberStore } from './ports.ts';
import type { StageTimes } from './stageTimes.ts';

/** a proposer waiting for its entry to be applied (rejected if another term's entry lands there) */
export interface Waiter {
  term: number;
  /** when a command's proposal reached the member (stageTimes' clock): its propose stage ends with its result; null: not timed (a configuration change) */
  startedAt: number | null;
  resolve(result: unknown): void;
  reject(err: Error): void;
}

/** what apply needs of the member around it */
export interface ApplyHands {
  readonly nodeId: string;
  readonly store: MemberStore;
  readonly dropLog: RateLimitedLog;
  readonly events?: MemberEvents;
  /** the configuration as of the applied index (set here as config entries apply) */
  appliedMembership: Membership;
  /** joining mode: report membership once a committed configuration includes this node */
  maybeJoined(): void;
  emitMembership(): void;
  onRemoved(): void;
  onClusterId?(clusterId: string): void;
  onFatal(error: unknown): void;
  readonly stageTimes: StageTimes;
}

export class Applier {
  /** proposals by log index */
  readonly waiters = new Map<number, Waiter>();
  private readonly appliedWaiters: Array<{ index: number; resolve(): void }> = [];

  constructor(
    private readonly hands: ApplyHands,
    private readonly kv: AppliedState | null,
    private readonly hostState: HostAppliedState | null,
    private readonly appliedIndex: () => number,
  ) {}

  apply(committed: Entry[]): void {
    if (this.hostState) {
      this.applyHost(committed, this.hostState.host);
      return;
    }
    const commands: unknown[] = [];
    const commandEntries: Entry[] = [];
    let removedSelf = false;
    let membershipChanged = false;
    for (const e of committed) {
      if (e.type === 'command') {
        commands.push(e.data);
        commandEntries.push(e);
      } else if (e.type === 'config') {
        membershipChanged = true;
        if (this.applyConfig(e)) removedSelf = true;
      } else if (e.type === 'clusterId') {
        this.adoptClusterId(e.data);
      }
    }
    const last = committed[committed.length - 1]!;
    const kv = this.kv!;
    const { results, ops } = applyKvBatch(kv, commands);
    // visible at once, durable a moment later (the entries are durable in the log already)
    kv.record(last.index, ops);
    for (let i = 0; i < commandEntries.length; i++) this.settle(commandEntries[i]!, results[i]);
    for (const e of committed) if (e.type !== 'command') this.settle(e, null);
    this.notifyApplied(last.index);
    if (membershipChanged) this.hands.maybeJoined();
    const events = this.hands.events;
    if (events) {
      if (membershipChanged) this.hands.emitMembership();
      if (commandEntries.length > 0 && events.wantsApplied()) {
        for (let i = 0; i < commandEntries.length; i++) events.applied(commandEntries[i]!.index, commandEntries[i]!.data, results[i]);
      }
    }
    if (removedSelf) this.hands.onRemoved();
  }

  /** a committed configuration is in force as applied; true when it no longer includes this node */
  private applyConfig(e: Entry): boolean {
    this.hands.appliedMembership = e.data as Membership;
    return !this.hands.appliedMembership.members.some((m) => m.nodeId === this.hands.nodeId);
  }

  /** the first committed `clusterId` entry gives an older cluster its id, on every member alike */
  private adoptClusterId(data: unknown): void {
    const clusterId = (data as { clusterId?: unknown } | null)?.clusterId;
    if (typeof clusterId !== 'string' || this.hands.store.identity().clusterId !== null) return;
    // synchronous and durable inside the call (the promise only reports completion)
    this.hands.store.updateIdentity({ clusterId, initializedAt: new Date().toISOString() }).catch((err: unknown) => this.hands.onFatal(err));
    this.hands.onClusterId?.(clusterId);
  }

  /**
   * A host state: each command to apply(), one at a time, in log order. A throw (or a promise, which
   * cannot be deterministic) is answered to the proposer as APPLY_FAILED on every node alike.
   */
  private applyHost(committed: Entry[], host: AnyReplicatedState): void {
    let removedSelf = false;
    let membershipChanged = false;
    // per-entry events only while someone listens
    const listening = this.hands.events?.wantsApplied() ? this.hands.events : null;
    const dropLog = this.hands.dropLog;
    for (const e of committed) {
      if (e.type === 'command') {
        let result: unknown;
        let failure: string | null = null;
        try {
          result = host.apply(e.data, { index: e.index, term: e.term });
          if (isThenable(result)) {
            // report a late rejection rather than let it crash the process; the command is answered now
            result.then(undefined, (err: unknown) => dropLog.warn('apply-async', { err, index: e.index }, 'an asynchronous apply() rejected'));
            failure = 'apply() returned a promise: a replicated state must apply commands synchronously';
            result = undefined;
          }
        } catch (err) {
          failure = err instanceof Error ? err.message : String(err);
        }
        if (failure !== null) {
          dropLog.warn('apply-failed', { index: e.index, error: failure }, 'the replicated state refused a command');
          this.settleFailed(e, failure);
          listening?.applied(e.index, e.data, { error: failure });
        } else {
          this.settle(e, result);
          listening?.applied(e.index, e.data, result);
        }
      } else {
        if (e.type === 'config') {
          membershipChanged = true;
          if (this.applyConfig(e)) removedSelf = true;
        } else if (e.type === 'clusterId') {
          this.adoptClusterId(e.data);
        }
        this.settle(e, null);
      }
    }
    const last = committed[committed.length - 1]!;
    // the host object is current at once; its snapshot() is taken and written once, at the next flush
    this.hostState!.record(last.index);
    this.notifyApplied(last.index);
    if (membershipChanged) this.hands.maybeJoined();
    if (membershipChanged) this.hands.emitMembership();
    if (removedSelf) this.hands.onRemoved();
  }

  private settleFailed(entry: Entry, message: string): void {
    const w = this.waiters.get(entry.index);
    if (!w) return;
    this.waiters.delete(entry.index);
    if (w.startedAt !== null) this.hands.stageTimes.proposals.failed++;
    if (w.term === entry.term) w.reject(new ApplyFailedError(`the command was committed at index ${entry.index} but the replicated state refused it: ${message}`, { index: entry.index }));
    else w.reject(conclaveError('NOT_LEADER', 'leadership changed before the proposal committed; it was not applied — retry'));
  }

  private settle(entry: Entry, result: unknown): void {
    const w = this.waiters.get(entry.index);
    if (!w) return;
    this.waiters.delete(entry.index);
    const times = this.hands.stageTimes;
    if (w.term === entry.term) {
      if (w.startedAt !== null) {
        times.observe('propose', w.startedAt);
        times.proposals.applied++;
      }
      w.resolve(result);
    } else {
      if (w.startedAt !== null) times.proposals.failed++;
      w.reject(conclaveError('NOT_LEADER', 'leadership changed before the proposal committed; it was not applied — retry'));
    }
  }

  /** resolves once `index` is applied here */
  waitApplied(index: number): Promise<void> {
    if (this.appliedIndex() >= index) return Promise.resolve();
    return new Promise((resolve) => this.appliedWaiters.push({ index, resolve }));
  }

  notifyApplied(index: number): void {
    for (let i = this.appliedWaiters.length - 1; i >= 0; i--) {
      const w = this.appliedWaiters[i]!;
      if (w.index <= index) {
        this.appliedWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** every waiting proposer gets `err` (shutdown, or leadership lost) */
  rejectAll(err: Error): void {
    for (const w of this.waiters.values()) {
      if (w.startedAt !== null) this.hands.stageTimes.proposals.failed++;
      w.reject(err);
    }
    this.waiters.clear();
  }
}

/**
 * Whether the configuration this store has applied (its snapshot's, then committed config entries up
 * to its applied index) includes `nodeId`: false for a node that took a cluster's state while joining
 * and is in no committed configuration yet.
 */
export function appliedMembershipIncludes(store: Pick<MemberStore, 'snapshotMeta' | 'appliedIndex' | 'entries' | 'firstIndex' | 'lastIndex'>, nodeId: string): boolean {
  let membership = store.snapshotMeta()?.membership ?? { members: [] };
  const applied = store.appliedIndex();
  for (const e of store.entries(store.firstIndex(), Math.min(applied, store.lastIndex()) + 1)) if (e.type === 'config') membership = e.data as Membership;
  return membership.members.some((m) => m.nodeId === nodeId);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}
