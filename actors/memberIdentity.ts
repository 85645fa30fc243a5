// The member's identity as it states it on every message (sender name, node id, cluster id,
// generation), read from the store and cached: it changes only when the node adopts a cluster id.
import type { Sender } from '../runtime/wire/codec.ts';
import type { MemberStore } from './ports.ts';

export class MemberIdentity {
  private cached: Sender | null = null;

  constructor(
    private readonly name: string,
    private readonly store: MemberStore,
    /** joining mode: the cluster id this blank node accepted */
    private readonly joiningClusterId: string | null,
  ) {}

  get nodeId(): string {
    return this.sender().nodeId!;
  }

  get clusterId(): string | null {
    return this.sender().clusterId;
  }

  /** the generation it states (undefined until its cluster id is durable) */
  get generation(): number | undefined {
    return this.sender().generation;
  }

  /** `version`: the cluster's committed version, which its messages state (clusterVersion.ts); absent: as last stated (the getters above) */
  sender(version = this.cached?.version ?? 1): Sender {
    const id = this.store.identity();
    // a joining node acts under the cluster id it accepted (and only that one) until it is durable
    const clusterId = id.clusterId ?? this.joiningClusterId;
    // the generation is stated only with a durable cluster id: a joining node adopts the cluster's with its first state
    const generation = id.clusterId === null ? undefined : id.generation;
    if (this.cached === null || this.cached.clusterId !== clusterId || this.cached.generation !== generation || this.cached.version !== version) {
      this.cached = { name: this.name, nodeId: id.nodeId, clusterId, generation, version };
    }
    return this.cached;
  }
}
