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
  if (s.members.length > 0) {
    lines.push('members:');
    for (const m of s.members) {
      lines.push(
        `  ${m.leader ? '*' : ' '} ${m.name.padEnd(16)} ${m.voter ? 'voter  ' : 'learner'} ${m.reachable ? 'reachable  ' : 'unreachable'} match ${m.matchIndex}  ${m.nodeId}`,
      );
    }
  }
  return lines.join('\n');
}

export function formatClusterList(list: ClusterList): string {
  const lines = [`cluster id: ${list.clusterId ?? '(none)'}`, `leader:     ${list.leader ?? '(none)'}`, `term:       ${list.term}`, 'members:'];
  for (const m of list.members) {
    lines.push(
      `  ${m.leader ? '*' : ' '} ${m.name.padEnd(16)} ${m.voter ? 'voter  ' : 'learner'} ${m.reachable ? 'reachable  ' : 'unreachable'} match ${m.matchIndex}  ${m.nodeId}`,
    );
  }
  return lines.join('\n');
}
