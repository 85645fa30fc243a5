// A tiny data-driven script language for raft scenarios, in the spirit of etcd's testdata/*.txt.
// Nodes are named 1..N; time advances only by `tick`; messages move only on `deliver`.
//
//   nodes 3 [learners=4] [blank=5] [prevote=off] [checkquorum=off] [election=10] [maxentries=1] [random=0.5]
//   tick 1 x10 | tick all x3       campaign 1         deliver [rounds=1]     drop [1→2]
//   partition 1 | 2 3              oneway 1 -> 2      heal
//   propose 1 put a=1 [-> ok|not-leader|transferring|config-change-pending]
//   read 1 r1       transfer 1 [2] [-> ok|not-leader]       compact 1
//   crash 2   restart 2   add-learner 1 4   promote 1 4   remove 1 3
//   expect leader 1 term 2 | expect leader none | expect role 2 follower | expect term 2 3
//   expect commit 1 5 | expect commit all 5 | expect log 2 = 1:1 1:2 2:3 | expect kv 2 a=1 b=2
//   expect read r1 = 3 | expect read r1 failed | expect msgs 0 | expect firstindex 1 4
//   set-log 2 terms=1,1,4,4 term=4 [commit=1]     (rebuild node 2 with that log; entry 1 is the config)
import { bootstrapRestore, blankRestore, RaftCore, type RaftRestore, type RaftTestHooks } from '../../machines/raft/core.ts';
import type { Entry, Member, Membership, Role } from '../../machines/raft/types.ts';
import { type Envelope, type HostObserver, SimHost } from '../sim/host.ts';

export class ScriptError extends Error {}

interface NodeOptions {
  preVote: boolean;
  checkQuorum: boolean;
  electionTicks: number;
  heartbeatTicks: number;
  maxEntriesPerMessage: number;
  /** per node (1-based, the last value repeats): fixes each node's randomized election timeout */
  random: number[];
  hooks: RaftTestHooks;
}

export class ScriptCluster {
  readonly hosts = new Map<string, SimHost>();
  queue: Envelope[] = [];
  /** "a→b" pairs that drop messages */
  private blocked = new Set<string>();
  readonly reads = new Map<string, number | 'failed'>();
  private options: NodeOptions = { preVote: true, checkQuorum: true, electionTicks: 10, heartbeatTicks: 1, maxEntriesPerMessage: 64, random: [0], hooks: {} };
  private seq = 0;
  readonly out: string[] = [];
  private readonly observer: HostObserver = {
    persisted: () => {},
    applied: () => {},
    readServed: (_host, requestId, index) => this.reads.set(requestId, index),
    readFailed: (_host, requestId) => this.reads.set(requestId, 'failed'),
    crashAfterPersist: () => false,
  };

  run(script: string, name = 'script'): void {
    const lines = script.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.replace(/#.*$/, '').trim();
      if (line === '') continue;
      try {
        this.exec(line);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        throw new ScriptError(`${name}:${i + 1}: ${line}\n  ${message}\n${this.describe()}`);
      }
    }
  }

  describe(): string {
    const rows: string[] = [];
    for (const [id, host] of this.hosts) {
      const core = host.core;
      if (core === null) {
        rows.push(`  ${id}: crashed`);
        continue;
      }
      const s = core.status();
      rows.push(`  ${id}: ${s.role} term=${s.term} leader=${s.leader ?? '-'} commit=${s.commit} log=${this.logOf(id)}`);
    }
    return rows.join('\n');
  }

  private host(id: string): SimHost {
    const host = this.hosts.get(id);
    if (host === undefined) throw new Error(`no node ${id}`);
    return host;
  }

  private core(id: string): RaftCore {
    const core = this.host(id).core;
    if (core === null) throw new Error(`node ${id} is crashed`);
    return core;
  }

  private makeHost(id: string, restore: RaftRestore): SimHost {
    const o = this.options;
    const r0 = o.random[Math.min(Number(id) - 1, o.random.length - 1)] ?? 0;
    return new SimHost(id, 'cluster-a', restore, (peer, r) =>
      new RaftCore({
        id: peer,
        electionTicks: o.electionTicks,
        heartbeatTicks: o.heartbeatTicks,
        random: () => r0,
        preVote: o.preVote,
        checkQuorum: o.checkQuorum,
        maxEntriesPerMessage: o.maxEntriesPerMessage,
        restore: r,
        testHooks: o.hooks,
      }),
    );
  }

  private settle(id: string): void {
    this.host(id).processReady((envelope) => this.queue.push(envelope), this.observer);
  }

  private membership(): Membership {
    return this.core([...this.hosts.keys()].find((id) => this.hosts.get(id)!.core !== null)!).status().membership;
  }

  logOf(id: string): string {
    const core = this.core(id);
    const parts: string[] = [];
    for (let i = core.snapshotIndex + 1; i <= core.lastIndex; i++) parts.push(`${core.termAt(i)}:${i}`);
    return parts.join(' ');
  }

  private exec(line: string): void {
    const words = line.split(/\s+/);
    const [command, ...args] = words as [string, ...string[]];
    switch (command) {
      case 'nodes':
        this.cmdNodes(args);
        return;
      case 'tick': {
        const times = parseTimes(args[1]);
        const ids = args[0] === 'all' ? [...this.hosts.keys()] : [args[0]!];
        for (let t = 0; t < times; t++) {
          for (const id of ids) {
            const host = this.host(id);
            if (host.core === null) continue;
            host.core.tick();
            this.settle(id);
          }
        }
        return;
      }
      case 'campaign': {
        const id = args[0]!;
        const core = this.core(id);
        for (let t = 0; t < 100 && (core.currentRole === 'follower' || core.currentRole === 'learner'); t++) {
          core.tick();
          this.settle(id);
        }
        if (core.currentRole === 'follower' || core.currentRole === 'learner') throw new Error(`node ${id} did not campaign`);
        return;
      }
      case 'deliver':
        this.deliver(args[0]?.startsWith('rounds=') ? Number(args[0].slice(7)) : 1000);
        return;
      case 'drop': {
        if (args.length === 0) this.queue = [];
        else {
          const [from, to] = args[0]!.split(/→|->/);
          this.queue = this.queue.filter((e) => !(e.msg.from === from && e.msg.to === to));
        }
        return;
      }
      case 'partition': {
        const groups = args.join(' ').split('|').map((g) => g.trim().split(/\s+/));
        this.blocked.clear();
        for (const a of groups) for (const b of groups) if (a !== b) for (const x of a) for (const y of b) this.blocked.add(`${x}→${y}`);
        return;
      }
      case 'oneway': {
        const [from, to] = args.join(' ').split(/->|→/).map((s) => s.trim());
        this.blocked.add(`${from}→${to}`);
        return;
      }
      case 'heal':
        this.blocked.clear();
        return;
      case 'propose': {
        const [id, op, kv, arrow, want] = args;
        const [key, value] = (kv ?? '').split('=');
        const result = this.core(id!).propose([{ type: 'command', data: { op: op === 'del' ? 'del' : 'put', key, value, id: `c${++this.seq}` } }]);
        this.settle(id!);
        const got = result.ok ? 'ok' : result.reason;
        if (arrow === '->' && want !== got) throw new Error(`propose: expected ${want}, got ${got}`);
        if (arrow === undefined && !result.ok) throw new Error(`propose failed: ${got}`);
        return;
      }
      case 'read':
        this.core(args[0]!).readIndex(args[1]!);
        this.settle(args[0]!);
        return;
      case 'transfer': {
        const id = args[0]!;
        const target = args[1] !== undefined && args[1] !== '->' ? args[1] : undefined;
        const result = this.core(id).transferLeadership(target);
        this.settle(id);
        const arrow = args.indexOf('->');
        const got = result.ok ? 'ok' : result.reason;
        if (arrow >= 0 && args[arrow + 1] !== got) throw new Error(`transfer: expected ${args[arrow + 1]}, got ${got}`);
        return;
      }
      case 'compact': {
        if (!this.host(args[0]!).compact()) throw new Error('nothing to compact');
        return;
      }
      case 'crash':
        this.host(args[0]!).crash();
        return;
      case 'restart':
        this.host(args[0]!).start();
        this.settle(args[0]!);
        return;
      case 'add-learner':
      case 'promote':
      case 'remove':
        this.cmdMembership(command, args[0]!, args[1]!, args.slice(2));
        return;
      case 'set-log':
        this.cmdSetLog(args);
        return;
      case 'expect':
        this.expect(args);
        return;
      default:
        throw new Error(`unknown command ${command}`);
    }
  }

  private cmdNodes(args: string[]): void {
    const count = Number(args[0]);
    const flags = parseFlags(args.slice(1));
    const o = this.options;
    if (flags.prevote !== undefined) o.preVote = flags.prevote !== 'off';
    if (flags.checkquorum !== undefined) o.checkQuorum = flags.checkquorum !== 'off';
    if (flags.election !== undefined) o.electionTicks = Number(flags.election);
    if (flags.maxentries !== undefined) o.maxEntriesPerMessage = Number(flags.maxentries);
    if (flags.random !== undefined) o.random = flags.random.split(',').map(Number);
    if (flags.hooks !== undefined) for (const hook of flags.hooks.split(',')) o.hooks[hook as keyof RaftTestHooks] = true;
    const learners = (flags.learners ?? '').split(',').filter(Boolean);
    const blank = (flags.blank ?? '').split(',').filter(Boolean);
    const members: Member[] = [];
    for (let i = 1; i <= count; i++) members.push({ nodeId: String(i), name: `n${i}`, voter: true });
    for (const id of learners) members.push({ nodeId: id, name: `n${id}`, voter: false });
    for (const member of members) this.hosts.set(member.nodeId, this.makeHost(member.nodeId, bootstrapRestore({ members })));
    for (const id of blank) this.hosts.set(id, this.makeHost(id, blankRestore()));
  }

  private cmdMembership(command: string, via: string, target: string, rest: string[]): void {
    const current = this.core(via).status().membership;
    let members = current.members.filter((m) => m.nodeId !== target);
    if (command === 'add-learner') {
      members = [...current.members, { nodeId: target, name: `n${target}`, voter: false }];
      if (!this.hosts.has(target)) this.hosts.set(target, this.makeHost(target, blankRestore()));
    } else if (command === 'promote') {
      members = current.members.map((m) => (m.nodeId === target ? { ...m, voter: true } : m));
    }
    const result = this.core(via).propose([{ type: 'config', data: { members } }]);
    this.settle(via);
    const got = result.ok ? 'ok' : result.reason;
    const want = rest[0] === '->' ? rest[1] : 'ok';
    if (want !== got) throw new Error(`${command}: expected ${want}, got ${got}`);
  }

  private cmdSetLog(args: string[]): void {
    const id = args[0]!;
    const flags = parseFlags(args.slice(1));
    const terms = (flags.terms ?? '').split(',').filter(Boolean).map(Number);
    const membership = this.membership();
    const entries: Entry[] = terms.map((term, i) =>
      i === 0 ? { index: 1, term, type: 'config', data: membership } : { index: i + 1, term, type: 'command', data: { op: 'put', key: `k${i + 1}`, value: `t${term}`, id: `set${i + 1}` } },
    );
    const term = Number(flags.term ?? terms[terms.length - 1] ?? 0);
    const restore: RaftRestore = { hardState: { term, vote: null, commit: Number(flags.commit ?? 1) }, snapshot: null, entries, applied: 0 };
    this.hosts.set(id, this.makeHost(id, restore));
    this.settle(id);
  }

  private deliver(rounds: number): void {
    for (let round = 0; round < rounds && this.queue.length > 0; round++) {
      const batch = this.queue;
      this.queue = [];
      const touched = new Set<string>();
      for (const envelope of batch) {
        const { from, to } = envelope.msg;
        if (this.blocked.has(`${from}→${to}`)) continue;
        const host = this.hosts.get(to);
        if (host === undefined || host.core === null) continue;
        host.receive(JSON.parse(JSON.stringify(envelope)) as Envelope); // the wire carries plain JSON
        touched.add(to);
        this.settle(to);
      }
    }
  }

  private expect(args: string[]): void {
    const [what, ...rest] = args as [string, ...string[]];
    switch (what) {
      case 'leader': {
        if (rest[0] === 'none') {
          const leaders = [...this.hosts.values()].filter((h) => h.core?.currentRole === 'leader').map((h) => h.id);
          if (leaders.length > 0) throw new Error(`expected no leader, got ${leaders.join(',')}`);
          return;
        }
        const core = this.core(rest[0]!);
        if (core.currentRole !== 'leader') throw new Error(`expected ${rest[0]} to be leader, it is ${core.currentRole}`);
        if (rest[1] === 'term' && core.currentTerm !== Number(rest[2])) throw new Error(`expected term ${rest[2]}, got ${core.currentTerm}`);
        for (const host of this.hosts.values()) {
          if (host.id !== rest[0] && host.core?.currentRole === 'leader' && host.core.currentTerm === core.currentTerm) {
            throw new Error(`two leaders in term ${core.currentTerm}: ${rest[0]} and ${host.id}`);
          }
        }
        return;
      }
      case 'role': {
        const core = this.core(rest[0]!);
        if (core.currentRole !== (rest[1] as Role)) throw new Error(`expected ${rest[0]} to be ${rest[1]}, it is ${core.currentRole}`);
        if (rest[2] === 'term' && core.currentTerm !== Number(rest[3])) throw new Error(`expected term ${rest[3]}, got ${core.currentTerm}`);
        return;
      }
      case 'term': {
        const core = this.core(rest[0]!);
        if (core.currentTerm !== Number(rest[1])) throw new Error(`expected ${rest[0]} at term ${rest[1]}, got ${core.currentTerm}`);
        return;
      }
      case 'commit': {
        const ids = rest[0] === 'all' ? [...this.hosts.keys()].filter((id) => this.hosts.get(id)!.core !== null) : [rest[0]!];
        for (const id of ids) {
          const commit = this.core(id).commitIndex;
          if (commit !== Number(rest[1])) throw new Error(`expected ${id} commit ${rest[1]}, got ${commit}`);
        }
        return;
      }
      case 'log': {
        const want = rest.slice(2).join(' ');
        const got = this.logOf(rest[0]!);
        if (got !== want) throw new Error(`expected log of ${rest[0]} = ${want}\n  got ${got}`);
        return;
      }
      case 'firstindex': {
        const first = this.core(rest[0]!).snapshotIndex + 1;
        if (first !== Number(rest[1])) throw new Error(`expected first index ${rest[1]}, got ${first}`);
        return;
      }
      case 'kv': {
        const host = this.host(rest[0]!);
        const want = rest.slice(1).sort().join(' ');
        const got = Object.entries(host.kv)
          .map(([k, v]) => `${k}=${v}`)
          .sort()
          .join(' ');
        if (got !== want) throw new Error(`expected kv of ${rest[0]} = ${want}, got ${got}`);
        return;
      }
      case 'read': {
        const got = this.reads.get(rest[0]!);
        const want = rest[1] === 'failed' ? 'failed' : rest[1] === 'pending' ? undefined : Number(rest[2]);
        if (got !== want) throw new Error(`expected read ${rest[0]} ${rest.slice(1).join(' ')}, got ${got ?? 'pending'}`);
        return;
      }
      case 'msgs': {
        if (this.queue.length !== Number(rest[0])) {
          throw new Error(`expected ${rest[0]} messages in flight, got ${this.queue.length}: ${this.queue.map((e) => `${e.msg.type} ${e.msg.from}→${e.msg.to}`).join(', ')}`);
        }
        return;
      }
      case 'voter':
      case 'learner':
      case 'absent': {
        const member = this.core(rest[0]!).status().membership.members.find((m) => m.nodeId === rest[1]);
        const got = member === undefined ? 'absent' : member.voter ? 'voter' : 'learner';
        if (got !== what) throw new Error(`expected ${rest[1]} to be ${what} in ${rest[0]}'s config, it is ${got}`);
        return;
      }
      default:
        throw new Error(`unknown expectation ${what}`);
    }
  }
}

function parseTimes(word: string | undefined): number {
  if (word === undefined) return 1;
  if (!/^x\d+$/.test(word)) throw new Error(`expected xN, got ${word}`);
  return Number(word.slice(1));
}

function parseFlags(words: string[]): Record<string, string> {
  const flags: Record<string, string> = {};
  for (const word of words) {
    const at = word.indexOf('=');
    if (at < 0) throw new Error(`expected key=value, got ${word}`);
    flags[word.slice(0, at)] = word.slice(at + 1);
  }
  return flags;
}
