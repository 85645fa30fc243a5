// Human-readable renderings of the JSON the admin protocol returns.
import type { ClusterList, StatusReply } from '../wire/adminProtocol.ts';

export function formatStatus(s: StatusReply): string {
  const lines = [
    `name:       ${s.name}`,
    `node id:    ${s.nodeId}`,
    `cluster id: ${s.clusterId ?? '(none: not initialized)'}`,
    `phase:      ${s.phase}`,
    `role:       ${s.role}`,
    `term:       ${s.term}`,
    `leader:     ${s.leader ?? '(none)'}`,
    `commit:     ${s.commitIndex}   applied: ${s.appliedIndex}`,
  ];
  // an older node's status has no bus field
  if (s.bus) lines.push(`bus:        ${s.bus.kind}${s.bus.server ? ` ${s.bus.server}` : ''} ${s.bus.connected ? 'connected' : 'DISCONNECTED'}, ${s.bus.reconnects} reconnects`);
  lines.push(...versionLines(s.clusterVersion));
  if (s.members.length > 0) {
    lines.push('members:');
    for (const m of s.members) lines.push(memberLine(m));
  }
  return lines.join('\n');
}

/** the cluster version, from a node of 0.2 or later (an older one's status has none) */
function versionLines(v: StatusReply['clusterVersion']): string[] {
  if (v === undefined) return [];
  return [`version:    cluster ${v.version}, this node speaks ${range(v.speaks)}; peer authentication ${v.authentication}`, `            ${v.note}`];
}

function range(s: { min: number; max: number }): string {
  return s.min === s.max ? `${s.min}` : `${s.min}..${s.max}`;
}

function memberLine(m: StatusReply['members'][number]): string {
  // speaks: what it said it speaks (a node of 0.1 says nothing: 1); "no key": its member key is not committed
  const speaks = m.speaks === undefined ? '' : `  speaks ${range(m.speaks)}`;
  const key = m.keyCommitted === false ? '  no key' : '';
  return `  ${m.leader ? '*' : ' '} ${m.name.padEnd(16)} ${m.voter ? 'voter  ' : 'learner'} ${m.reachable ? 'reachable  ' : 'unreachable'} match ${m.matchIndex}  ${m.nodeId}${speaks}${key}`;
}

export function formatClusterList(list: ClusterList): string {
  const lines = [`cluster id: ${list.clusterId ?? '(none)'}`, `leader:     ${list.leader ?? '(none)'}`, `term:       ${list.term}`, ...versionLines(list.clusterVersion), 'members:'];
  for (const m of list.members) lines.push(memberLine(m));
  return lines.join('\n');
}
