// Test helper: write N blank stores as members of one cluster with a static voter configuration,
// the way `init` writes a one-member cluster (faster than forming it with `cluster add`).
import { v7 as uuidv7 } from 'uuid';
import type { Membership } from '../../machines/raft/types.ts';
import { openStore } from '../../runtime/store/index.ts';

export interface StaticNode {
  name: string;
  dataDir: string;
}

export async function seedStaticCluster(nodes: StaticNode[], pairs: Array<[string, unknown]> = []): Promise<{ clusterId: string; membership: Membership }> {
  const members: Membership['members'] = [];
  for (const n of nodes) {
    const store = await openStore({ dataDir: n.dataDir, name: n.name });
    members.push({ nodeId: store.identity().nodeId, name: n.name, voter: true });
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
