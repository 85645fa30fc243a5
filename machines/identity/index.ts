// The join rule: the one place that decides whether two parties may form or continue a
// membership relation. Pure; used by every handshake and by every peer message.

/** A node id: UUID v7 made on a node's first start, never reused. */
export type NodeId = string;
/** A cluster id: UUID made when a cluster is bootstrapped; null while a node is blank. */
export type ClusterId = string | null;

export interface Party {
  name: string;
  clusterId: ClusterId;
}

export type JoinVerdict =
  | { allowed: true; reason: 'same-cluster' | 'one-blank' | 'both-blank'; adopt: ClusterId }
  | { allowed: false; reason: 'different-clusters'; message: string };

/**
 * May `local` and `remote` form or continue a membership relation?
 * Allowed when both ids are equal, exactly one is set (the blank side adopts it), or neither is.
 * `adopt` is the id the relation runs under (null when both are blank).
 */
export function checkJoin(local: Party, remote: Party): JoinVerdict {
  if (local.clusterId !== null && remote.clusterId !== null) {
    if (local.clusterId === remote.clusterId) return { allowed: true, reason: 'same-cluster', adopt: local.clusterId };
    return {
      allowed: false,
      reason: 'different-clusters',
      message: `join refused: ${remote.name} belongs to cluster ${remote.clusterId} but ${local.name} belongs to cluster ${local.clusterId}`,
    };
  }
  if (local.clusterId === null && remote.clusterId === null) return { allowed: true, reason: 'both-blank', adopt: null };
  return { allowed: true, reason: 'one-blank', adopt: local.clusterId ?? remote.clusterId };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

export const NODE_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export function validNodeName(name: string): boolean {
  return NODE_NAME_RE.test(name);
}
