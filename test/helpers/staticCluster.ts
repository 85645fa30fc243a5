// Test helper: write N blank stores as members of one cluster with a static voter configuration,
// the way `init` writes a one-member cluster (faster than forming it with `cluster add`).
// Each member's key is committed in the configuration, as `init` and `cluster add` do, so that its
// peer messages and its forwards are checked as well as signed; `commitKeys: false` leaves them out:
// the cluster is then at cluster version 1, as one of release 0.1 being upgraded: a member's messages
// are taken without a check until the leader raises the version and commits the keys the members
// state (actors/clusterVersion.ts).
import { v7 as uuidv7 } from 'uuid';
import type { Membership } from '../../machines/raft/types.ts';
import { openStore } from '../../runtime/store/index.ts';
import { PROTOCOL_VERSION } from '../../runtime/wire/envelope.ts';

export interface StaticNode {
  name: string;
  dataDir: string;
}

export async function seedStaticCluster(
  nodes: StaticNode[],
  pairs: Array<[string, unknown]> = [],
  opts: { commitKeys?: boolean } = {},
): Promise<{ clusterId: string; membership: Membership }> {
  const members: Membership['members'] = [];
  for (const n of nodes) {
    const store = await openStore({ dataDir: n.dataDir, name: n.name });
    members.push({ nodeId: store.identity().nodeId, name: n.name, voter: true, ...(opts.commitKeys !== false ? { key: store.memberKey().publicKey } : {}) });
    await store.close();
  }
  const clusterId = uuidv7();
  // with every key committed, a cluster of this release (bootstrap.ts): at the version it speaks; without, one of release 0.1 being upgraded
  const membership: Membership = opts.commitKeys !== false ? { members, version: PROTOCOL_VERSION } : { members };
  for (const n of nodes) {
    const store = await openStore({ dataDir: n.dataDir, name: n.name });
    await store.initializeCluster({ clusterId, meta: { index: 1, term: 1, membership }, pairs, hardState: { term: 1, vote: null, commit: 1 } });
    await store.close();
  }
  return { clusterId, membership };
}
