// The `expect` lines of the scenario scripts: assertions on the cluster's state at that point.
//   expect leader 1 term 2 | expect leader none | expect role 2 follower [term 2] | expect term 2 3
//   expect commit 1 5 | expect commit all 5 | expect log 2 = 1:1 1:2 2:3 | expect kv 2 a=1 b=2
//   expect read r1 = 3 | expect read r1 failed | expect read r1 pending | expect msgs 0
//   expect firstindex 1 4 | expect voter 1 4 | expect learner 1 4 | expect absent 1 4
//   expect progress 1 3 probe match=4 next=5   (leader 1's view of 3)
import type { Role } from '../../machines/raft/types.ts';
import type { ScriptCluster } from './script.ts';

export function expect(cluster: ScriptCluster, args: string[]): void {
  const [what, ...rest] = args as [string, ...string[]];
  switch (what) {
    case 'leader': {
      if (rest[0] === 'none') {
        const leaders = [...cluster.hosts.values()].filter((h) => h.core?.currentRole === 'leader').map((h) => h.id);
        if (leaders.length > 0) throw new Error(`expected no leader, got ${leaders.join(',')}`);
        return;
      }
      const core = cluster.core(rest[0]!);
      if (core.currentRole !== 'leader') throw new Error(`expected ${rest[0]} to be leader, it is ${core.currentRole}`);
      if (rest[1] === 'term' && core.currentTerm !== Number(rest[2])) throw new Error(`expected term ${rest[2]}, got ${core.currentTerm}`);
      for (const host of cluster.hosts.values()) {
        if (host.id !== rest[0] && host.core?.currentRole === 'leader' && host.core.currentTerm === core.currentTerm) {
          throw new Error(`two leaders in term ${core.currentTerm}: ${rest[0]} and ${host.id}`);
        }
      }
      return;
    }
    case 'role': {
      const core = cluster.core(rest[0]!);
      if (core.currentRole !== (rest[1] as Role)) throw new Error(`expected ${rest[0]} to be ${rest[1]}, it is ${core.currentRole}`);
      if (rest[2] === 'term' && core.currentTerm !== Number(rest[3])) throw new Error(`expected term ${rest[3]}, got ${core.currentTerm}`);
      return;
    }
    case 'term': {
      const core = cluster.core(rest[0]!);
      if (core.currentTerm !== Number(rest[1])) throw new Error(`expected ${rest[0]} at term ${rest[1]}, got ${core.currentTerm}`);
      return;
    }
    case 'commit': {
      const ids = rest[0] === 'all' ? [...cluster.hosts.keys()].filter((id) => cluster.hosts.get(id)!.core !== null) : [rest[0]!];
      for (const id of ids) {
        const commit = cluster.core(id).commitIndex;
        if (commit !== Number(rest[1])) throw new Error(`expected ${id} commit ${rest[1]}, got ${commit}`);
      }
      return;
    }
    case 'log': {
      const want = rest.slice(2).join(' ');
      const got = cluster.logOf(rest[0]!);
      if (got !== want) throw new Error(`expected log of ${rest[0]} = ${want}\n  got ${got}`);
      return;
    }
    case 'firstindex': {
      const first = cluster.core(rest[0]!).snapshotIndex + 1;
      if (first !== Number(rest[1])) throw new Error(`expected first index ${rest[1]}, got ${first}`);
      return;
    }
    case 'kv': {
      const host = cluster.host(rest[0]!);
      const want = rest.slice(1).sort().join(' ');
      const got = Object.entries(host.kv)
        .map(([k, v]) => `${k}=${v}`)
        .sort()
        .join(' ');
      if (got !== want) throw new Error(`expected kv of ${rest[0]} = ${want}, got ${got}`);
      return;
    }
    case 'read': {
      const got = cluster.reads.get(rest[0]!);
      const want = rest[1] === 'failed' ? 'failed' : rest[1] === 'pending' ? undefined : Number(rest[2]);
      if (got !== want) throw new Error(`expected read ${rest[0]} ${rest.slice(1).join(' ')}, got ${got ?? 'pending'}`);
      return;
    }
    case 'msgs': {
      if (cluster.queue.length !== Number(rest[0])) {
        throw new Error(`expected ${rest[0]} messages in flight, got ${cluster.queue.length}: ${cluster.queue.map((e) => `${e.msg.type} ${e.msg.from}→${e.msg.to}`).join(', ')}`);
      }
      return;
    }
    case 'voter':
    case 'learner':
    case 'absent': {
      const member = cluster.core(rest[0]!).status().membership.members.find((m) => m.nodeId === rest[1]);
      const got = member === undefined ? 'absent' : member.voter ? 'voter' : 'learner';
      if (got !== what) throw new Error(`expected ${rest[1]} to be ${what} in ${rest[0]}'s config, it is ${got}`);
      return;
    }
    case 'progress': {
      const pr = cluster.core(rest[0]!).status().progress[rest[1]!];
      const got = pr === undefined ? 'none' : `${pr.state} match=${pr.matchIndex} next=${pr.nextIndex}`;
      const want = rest.slice(2).join(' ');
      if (got !== want) throw new Error(`expected ${rest[0]}'s progress of ${rest[1]} to be ${want}, got ${got}`);
      return;
    }
    default:
      throw new Error(`unknown expectation ${what}`);
  }
}
