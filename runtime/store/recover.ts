// `conclave recover --data-dir D`: offline disaster recovery. When a cluster has lost its quorum
// for good, one survivor's store is made the sole voter of its cluster — same cluster id, the
// committed data — under a new identity generation. Members of the older generation are refused
// from then on (the generation travels on every peer message) until they are wiped and added again.
import { resolve } from 'node:path';
import { conclaveError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { openStore, type RecoveryWrite } from './store.ts';

export interface RecoverResult extends RecoveryWrite {
  dataDir: string;
  name: string;
  nodeId: string;
}

/**
 * Recover the store in `dataDir` (which no process may have open). Refuses with a clear error:
 * NOT_A_STORE (missing, empty, not a Conclave store), LOCKED (in use), CORRUPT, NEWER_FORMAT
 * (exit 2 / 1 per runtime/errors.ts), NOT_A_MEMBER (never initialized: nothing to recover),
 * REMOVED (a removed node's data is not the cluster's). Nothing is written when it refuses.
 */
export async function recoverStore(opts: { dataDir: string; logger?: Logger }): Promise<RecoverResult> {
  const dataDir = resolve(opts.dataDir);
  // checked (every record, in a child process) before anything is written; a damaged store is refused
  const store = await openStore({ dataDir, name: null, create: false, logger: opts.logger });
  try {
    const id = store.identity();
    const name = id.name;
    if (id.clusterId === null) {
      throw conclaveError(
        'NOT_A_MEMBER',
        `recover refused: the store in ${dataDir} (node ${name}) was never initialized and never joined a cluster, so there is nothing to recover; start it and run \`conclave init --node ${name}\`, or add it to a cluster`,
      );
    }
    if (id.removed === true) {
      throw conclaveError(
        'REMOVED',
        `recover refused: node ${name} (store ${dataDir}) was removed from cluster ${id.clusterId}; its data is not the cluster's any more. Recover the store of a node that was still a member`,
      );
    }
    const write = store.recoverAsSoleVoter();
    opts.logger?.warn(
      { dataDir, node: name, clusterId: write.clusterId, generation: write.generation, index: write.commitIndex },
      `recovered ${name} as the sole voter of cluster ${write.clusterId} (generation ${write.previousGeneration} → ${write.generation})`,
    );
    return { ...write, dataDir, name, nodeId: id.nodeId };
  } finally {
    await store.close();
  }
}
