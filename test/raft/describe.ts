// How the scenario scripts print what happened: one line per message, per node state change.
//   1→2 append term=2 prev=1:1 entries=[2:2 noop, 2:3 put a=1] commit=1
//   2: role follower→candidate, term 1→2, leader 1→-, commit 2→3
// Entries and log positions are term:index, as in `expect log`.
import type { RaftCore } from '../../machines/raft/core.ts';
import type { RaftMessage } from '../../machines/raft/messages.ts';
import type { Entry, Membership } from '../../machines/raft/types.ts';
import type { Envelope } from './coreHost.ts';

export interface NodeState {
  role: string;
  term: number;
  leader: string;
  commit: number;
}

export function nodeState(core: RaftCore): NodeState {
  return { role: core.currentRole, term: core.currentTerm, leader: core.status().leader ?? '-', commit: core.commitIndex };
}

/** "role a→b, term 1→2, …" for what changed, or null */
export function describeChange(before: NodeState, after: NodeState): string | null {
  const changes: string[] = [];
  for (const key of ['role', 'term', 'leader', 'commit'] as const) {
    if (before[key] !== after[key]) changes.push(`${key} ${before[key]}→${after[key]}`);
  }
  return changes.length > 0 ? changes.join(', ') : null;
}

export function describeEnvelope(envelope: Envelope): string {
  return describeMessage(envelope.msg);
}

export function describeMessage(msg: RaftMessage): string {
  const head = `${msg.from}→${msg.to} ${msg.type} term=${msg.term}`;
  switch (msg.type) {
    case 'vote':
    case 'pre-vote':
      return `${head} last=${msg.lastTerm}:${msg.lastIndex}${msg.transfer ? ' transfer' : ''}`;
    case 'vote-response':
    case 'pre-vote-response':
      return `${head} ${msg.granted ? 'granted' : 'rejected'}`;
    case 'append':
      return `${head} prev=${msg.prevTerm}:${msg.prevIndex} entries=[${msg.entries.map(describeEntry).join(', ')}] commit=${msg.commit}`;
    case 'append-response':
      return msg.reject ? `${head} reject index=${msg.index} hint=${msg.hintTerm}:${msg.rejectHint}` : `${head} index=${msg.index}`;
    case 'heartbeat':
      return `${head} commit=${msg.commit}${msg.context === null ? '' : ` context=${msg.context}`}`;
    case 'heartbeat-response':
      return `${head}${msg.context === null ? '' : ` context=${msg.context}`}`;
    case 'snapshot':
      return `${head} snapshot=${msg.snapshot.term}:${msg.snapshot.index} ${describeMembership(msg.snapshot.membership)}`;
    case 'timeout-now':
      return head;
  }
}

export function describeEntry(entry: Entry): string {
  const at = `${entry.term}:${entry.index}`;
  switch (entry.type) {
    case 'command': {
      const command = entry.data as { op?: string; key?: string; value?: unknown };
      return `${at} ${command.op} ${command.key}${command.op === 'put' ? `=${String(command.value)}` : ''}`;
    }
    case 'config':
      return `${at} config ${describeMembership(entry.data as Membership)}`;
    default:
      return `${at} ${entry.type}`;
  }
}

/** voters, then learners marked with a trailing * */
function describeMembership(membership: Membership): string {
  return `{${membership.members.map((m) => (m.voter ? m.nodeId : `${m.nodeId}*`)).join(' ')}}`;
}
