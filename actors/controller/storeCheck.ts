// The store's side of starting a controller, before any connection: the kind of replicated state
// the store was created with, the cluster it belongs to against join.cluster, and the initFrom
// source read and validated completely before anything is written.
import type { ControllerOptions } from '../../runtime/config/controllerOptions.ts';
import { conclaveError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log/logger.ts';
import { checkStoredStateKind, hostSnapshotFromPairs } from '../../runtime/state/host.ts';
import { type InitSource, readInitSource } from '../../runtime/state/initSource.ts';
import type { NodeStore } from '../../runtime/store/index.ts';

/** the store's side of starting: the stored state kind and cluster, and the initFrom source, all before any connection */
export async function checkStore(opts: ControllerOptions, store: NodeStore, logger: Logger): Promise<InitSource | null> {
  // a store keeps the kind of replicated state it was created with (KV or the host's)
  checkStoredStateKind(store, opts.state !== undefined, `data dir ${opts.dataDir}`);
  const id = store.identity();
  if (opts.join?.cluster && id.clusterId !== null && id.clusterId !== opts.join.cluster) {
    throw conclaveError(
      'JOIN_REFUSED',
      `join refused: ${opts.name} is configured to join cluster ${opts.join.cluster} but its store belongs to cluster ${id.clusterId}; remove join.cluster from its configuration, or wipe its data dir to make it a new node`,
    );
  }
  if (opts.initFrom && id.clusterId === null && !id.removed) {
    // validated completely before any connection and before anything is written
    const source = await readInitSource(opts.initFrom);
    if (opts.state !== undefined) hostSnapshotFromPairs(source.pairs, `initFrom ${opts.initFrom}`);
    return source;
  }
  if (opts.initFrom) {
    logger.info({ node: opts.name, nodeId: id.nodeId, clusterId: id.clusterId, initFrom: opts.initFrom }, 'initFrom ignored: this node is already initialized (a store is never imported twice)');
  }
  return null;
}
