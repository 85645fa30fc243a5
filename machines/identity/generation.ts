// The identity generation (disaster recovery): `conclave recover` bumps it on the one store it
// makes the sole voter. Two parties of the SAME cluster id whose generations differ may not talk:
// the one with the older generation is a stale survivor of the cluster as it was before the
// recovery. Pure; called only when the generations differ (the hot path compares two numbers).

export interface GenerationParty {
  name: string;
  clusterId: string | null;
  /** undefined: not stated (a blank or joining node, or an older peer) — never a conflict */
  generation: number | undefined;
}

export type GenerationVerdict =
  | { conflict: false }
  | { conflict: true; stale: 'local' | 'remote'; clusterId: string; localGeneration: number; remoteGeneration: number; message: string };

const OK: GenerationVerdict = { conflict: false };

export function checkGeneration(local: GenerationParty, remote: GenerationParty): GenerationVerdict {
  if (local.generation === undefined || remote.generation === undefined || local.generation === remote.generation) return OK;
  if (local.clusterId === null || local.clusterId !== remote.clusterId) return OK; // the join rule decides those
  const clusterId = local.clusterId;
  const stale = remote.generation < local.generation ? 'remote' : 'local';
  const staleName = stale === 'remote' ? remote.name : local.name;
  const old = Math.min(local.generation, remote.generation);
  const current = Math.max(local.generation, remote.generation);
  const message =
    `generation refused: ${staleName} is a stale member of cluster ${clusterId} (its store is generation ${old}, ` +
    `but the cluster was recovered to generation ${current}; ${local.name} is at ${local.generation}, ${remote.name} at ${remote.generation}): ` +
    `wipe its data dir and add it again (conclave cluster add ${staleName} --via <member>)`;
  return { conflict: true, stale, clusterId, localGeneration: local.generation, remoteGeneration: remote.generation, message };
}
