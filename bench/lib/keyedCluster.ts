// The bench's 3 stores, seeded as one static cluster the way `init` and `cluster add` leave a real
// one: every member's key committed in the configuration, so that its peer messages are signed and
// checked (runtime/wire/peerSignature.ts). (test/helpers/staticCluster.ts commits none: there a
// member's messages are signed, and taken without a check, as a member of an older release's.)
import { v7 as uuidv7 } from 'uuid';
import type { Membership } from '../../machines/raft/types.ts';
import { openStore } from '../../runtime/store/index.ts';

export async function seedKeyedCluster(nodes: Array<{ name: string; dataDir: string }>): Promise<{ clusterId: string; membership: Membership }> {
  const members: Membership['members'] = [];
  for (const n of nodes) {
    const store = await openStore({ dataDir: n.dataDir, name: n.name });
    members.push({ nodeId: store.identity().nodeId, name: n.name, voter: true, key: store.memberKey().publicKey });
    await store.close();
  }
  const clusterId = uuidv7();
  const membership: Membership = { members };
  for (const n of nodes) {
    const store = await openStore({ dataDir: n.dataDir, name: n.name });
    await store.initializeCluster({ clusterId, meta: { index: 1, term: 1, membership }, pairs: [], hardState: { term: 1, vote: null, commit: 1 } });
    await store.close();
  }
  return { clusterId, membership };
}
