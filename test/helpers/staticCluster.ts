// Test helper: write N blank stores as members of one cluster with a static voter configuration,
// the way `init` writes a one-member cluster (faster than forming it with `cluster add`).
// Each member's key is committed in the configuration, as `init` and `cluster add` do, so that its
// peer messages and its forwards are checked as well as signed; `commitKeys: false` leaves them out:
// a member's messages are then taken without a check, as those of a member of an older release, and
// a member over NATS refuses its forwards (runtime/wire/operatorAuth.ts, `unsigned-forward`).
import { v7 as uuidv7 } from 'uuid';
import type { Membership } from '../../machines/raft/types.ts';
import { openStore } from '../../runtime/store/index.ts';

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
  const membership: Membership = { members };
  for (const n of nodes) {
    const store = await openStore({ dataDir: n.dataDir, name: n.name });
    await store.initializeCluster({ clusterId, meta: { index: 1, term: 1, membership }, pairs, hardState: { term: 1, vote: null, commit: 1 } });
    await store.close();
  }
  return { clusterId, membership };
}
