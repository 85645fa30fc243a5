// `conclave store forget-contact --data-dir D`: offline, clear the contact a blank node recorded when
// it accepted a cluster's join offer. That record is what keeps a node a cluster already reached from
// forking a second cluster with `init`; but an offer can also come from a cluster that then never
// adds the node (its add failed for good) or from anyone who can publish on the bus (offers are not
// authenticated without a join secret). Clearing it is the operator's explicit decision, taken on a
// stopped node whose store holds no cluster: a member's membership is never forgotten this way.
import { resolve } from 'node:path';
import { conclaveError } from '../errors.ts';
import { openStore } from './store.ts';

export interface ForgetContactResult {
  dataDir: string;
  name: string;
  nodeId: string;
  /** what was cleared, or null when no contact was recorded */
  forgot: { clusterId: string; by: string; at: string } | null;
}

export async function forgetContact(opts: { dataDir: string }): Promise<ForgetContactResult> {
  const dataDir = resolve(opts.dataDir);
  // checked (every record, in a child process) before anything is written; a damaged store is refused
  const store = await openStore({ dataDir, name: null, create: false });
  try {
    const id = store.identity();
    if (id.clusterId !== null) {
      throw conclaveError(
        'ALREADY_INITIALIZED',
        `forget-contact refused: node ${id.name} (store ${dataDir}) is a member of cluster ${id.clusterId}, not a blank node that was only contacted; to take it out of that cluster use \`conclave cluster remove ${id.name} --via <member>\``,
      );
    }
    const forgot = id.contactedBy ?? null;
    if (forgot !== null) await store.updateIdentity({ contactedBy: null });
    return { dataDir, name: id.name, nodeId: id.nodeId, forgot: forgot === null ? null : { ...forgot } };
  } finally {
    await store.close();
  }
}
