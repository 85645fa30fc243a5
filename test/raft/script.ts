// A tiny data-driven script language for raft scenarios, in the spirit of etcd's testdata/*.txt.
// Nodes are named 1..N; time advances only by `tick`; messages move only on `deliver`.
// Each command that makes something happen is followed in the file by its golden output (golden.ts):
// the messages sent and delivered, role/term/leader/commit changes, reads served (describe.ts).
// After an intended change in behaviour, rewrite the blocks and review the diff:
//   REWRITE=1 node scripts/run-tests.mjs test/raft/scenarios    or    node --import tsx test/raft/cli.ts --rewrite
//
//   nodes 3 [learners=4] [blank=5] [prevote=off] [checkquorum=off] [quietheartbeats=on] [election=10] [maxentries=1] [random=0.5]
//   tick 1 x10 | tick all x3       campaign 1         deliver [rounds=1]     drop [1→2]
//   partition 1 | 2 3              oneway 1 -> 2      heal
//   propose 1 put a=1 [-> ok|not-leader|transferring|config-change-pending]
//   read 1 r1       transfer 1 [2] [-> ok|not-leader]       compact 1
//   crash 2   restart 2   add-learner 1 4   promote 1 4   remove 1 3
//   report-snapshot 1 3 ok|failed 5   (leader 1's host streamed snapshot 5 to 3: delivered in full, or abandoned)
//   expect …  (expect.ts)
//   set-log 2 terms=1,1,4,4 term=4 [commit=1]     (rebuild node 2 with that log; entry 1 is the config)
import { bootstrapRestore, blankRestore, RaftCore, type RaftRestore, type RaftTestHooks } from '../../machines/raft/core.ts';
import type { Entry, Member, Membership } from '../../machines/raft/types.ts';
import { type Envelope, type HostObserver, SimHost } from './coreHost.ts';
import { describeChange, describeEnvelope, type NodeState, nodeState } from './describe.ts';
import { expect } from './expect.ts';
import { type GoldenRun, runGolden } from './golden.ts';

export class ScriptError extends Error {}

interface NodeOptions {
  preVote: boolean;
  checkQuorum: boolean;
  electionTicks: number;
  heartbeatTicks: number;
  maxEntriesPerMessage: number;
  quietHeartbeats: boolean;
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
  private options: NodeOptions = { preVote: true, checkQuorum: true, electionTicks: 10, heartbeatTicks: 1, maxEntriesPerMessage: 64, quietHeartbeats: false, random: [0], hooks: {} };
  private seq = 0;
  /** what the current command printed (its golden output) */
  private printed: string[] = [];
  /** prefix of printed lines: effects of a delivered message are indented under it */
  private indent = '';
  /** each live node's state as last printed, to print what changed */
  private readonly seen = new Map<string, NodeState>();
  /** reads answered during a Ready, printed after its messages */
  private notes: string[] = [];
  private readonly observer: HostObserver = {
    persisted: () => {},
    applied: () => {},
    readServed: (host, requestId, index) => {
      this.reads.set(requestId, index);
      this.notes.push(`${host.id}: read ${requestId} served at ${index}`);
    },
    readFailed: (host, requestId) => {
      this.reads.set(requestId, 'failed');
      this.notes.push(`${host.id}: read ${requestId} failed`);
    },
    crashAfterPersist: () => false,
  };

  /**
   * Runs a script: every `expect` must hold (a ScriptError names the line otherwise). Returns the
   * script with each command's output block as this run printed it, and where it differs.
   */
  run(script: string, name = 'script'): GoldenRun {
    return runGolden(script, (line, at) => {
      try {
        return this.execute(line);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        throw new ScriptError(`${name}:${at}: ${line}\n  ${message}\n${this.describe()}`);
      }
    });
  }

  /** runs one command; returns what it printed */
  execute(line: string): string[] {
    this.printed = [];
    this.exec(line);
    return this.printed;
  }

  private print(line: string): void {
    this.printed.push(this.indent + line);
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

  host(id: string): SimHost {
    const host = this.hosts.get(id);
    if (host === undefined) throw new Error(`no node ${id}`);
    return host;
  }

  core(id: string): RaftCore {
    const core = this.host(id).core;
    if (core === null) throw new Error(`node ${id} is crashed`);
    return core;
  }

  /** a node (new, or rebuilt with another log), remembered as it starts */
  private addHost(id: string, restore: RaftRestore): void {
    this.hosts.set(id, this.makeHost(id, restore));
    this.seen.set(id, nodeState(this.core(id)));
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
        quietHeartbeats: o.quietHeartbeats,
        restore: r,
        testHooks: o.hooks,
      }),
    );
  }

  /** runs the node's Ready loop; prints what changed in its state, then what it sent and served */
  private settle(id: string): void {
    const sent: Envelope[] = [];
    this.host(id).processReady((envelope) => {
      this.queue.push(envelope);
      sent.push(envelope);
    }, this.observer);
    const core = this.host(id).core;
    const before = this.seen.get(id);
    if (core !== null && before !== undefined) {
      const now = nodeState(core);
      const change = describeChange(before, now);
      if (change !== null) this.print(`${id}: ${change}`);
      this.seen.set(id, now);
    }
    for (const envelope of sent) this.print(describeEnvelope(envelope));
    for (const note of this.notes) this.print(note);
    this.notes = [];
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
        const [from, to] = args.length === 0 ? [] : args[0]!.split(/→|->/);
        const dropped = (e: Envelope) => args.length === 0 || (e.msg.from === from && e.msg.to === to);
        for (const envelope of this.queue.filter(dropped)) this.print(`dropped ${describeEnvelope(envelope)}`);
        this.queue = this.queue.filter((e) => !dropped(e));
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
        this.print(`${args[0]}: compacted, first index ${this.core(args[0]!).snapshotIndex + 1}`);
        return;
      }
      case 'report-snapshot': {
        const [id, to, outcome, index] = args;
        if (outcome !== 'ok' && outcome !== 'failed') throw new Error(`expected ok or failed, got ${outcome}`);
        this.core(id!).reportSnapshot(to!, outcome === 'ok', Number(index));
        this.settle(id!);
        return;
      }
      case 'crash':
        this.host(args[0]!).crash();
        this.seen.delete(args[0]!);
        this.print(`${args[0]}: crashed`);
        return;
      case 'restart': {
        this.host(args[0]!).start();
        const now = nodeState(this.core(args[0]!));
        this.seen.set(args[0]!, now);
        this.print(`${args[0]}: restarted as ${now.role}, term ${now.term}, commit ${now.commit}, log ${this.logOf(args[0]!) || '(empty)'}`);
        this.settle(args[0]!);
        return;
      }
      case 'add-learner':
      case 'promote':
      case 'remove':
        this.cmdMembership(command, args[0]!, args[1]!, args.slice(2));
        return;
      case 'set-log':
        this.cmdSetLog(args);
        return;
      case 'expect':
        expect(this, args);
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
    if (flags.quietheartbeats !== undefined) o.quietHeartbeats = flags.quietheartbeats === 'on';
    if (flags.election !== undefined) o.electionTicks = Number(flags.election);
    if (flags.maxentries !== undefined) o.maxEntriesPerMessage = Number(flags.maxentries);
    if (flags.random !== undefined) o.random = flags.random.split(',').map(Number);
    if (flags.hooks !== undefined) for (const hook of flags.hooks.split(',')) o.hooks[hook as keyof RaftTestHooks] = true;
    const learners = (flags.learners ?? '').split(',').filter(Boolean);
    const blank = (flags.blank ?? '').split(',').filter(Boolean);
    const members: Member[] = [];
    for (let i = 1; i <= count; i++) members.push({ nodeId: String(i), name: `n${i}`, voter: true });
    for (const id of learners) members.push({ nodeId: id, name: `n${id}`, voter: false });
    for (const member of members) this.addHost(member.nodeId, bootstrapRestore({ members }));
    for (const id of blank) this.addHost(id, blankRestore());
  }

  private cmdMembership(command: string, via: string, target: string, rest: string[]): void {
    const current = this.core(via).status().membership;
    let members = current.members.filter((m) => m.nodeId !== target);
    if (command === 'add-learner') {
      members = [...current.members, { nodeId: target, name: `n${target}`, voter: false }];
      if (!this.hosts.has(target)) this.addHost(target, blankRestore());
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
    this.addHost(id, restore);
    this.settle(id);
  }

  /** delivers what is in flight, `rounds` times over; each delivery is printed with its effects under it */
  private deliver(rounds: number): void {
    for (let round = 0; round < rounds && this.queue.length > 0; round++) {
      const batch = this.queue;
      this.queue = [];
      for (const envelope of batch) {
        const { from, to } = envelope.msg;
        const host = this.hosts.get(to);
        if (this.blocked.has(`${from}→${to}`)) this.print(`${describeEnvelope(envelope)}  (blocked)`);
        else if (host === undefined || host.core === null) this.print(`${describeEnvelope(envelope)}  (${to} is down)`);
        else {
          this.print(describeEnvelope(envelope));
          host.receive(JSON.parse(JSON.stringify(envelope)) as Envelope); // the wire carries plain JSON
          this.indent = '  ';
          try {
            this.settle(to);
          } finally {
            this.indent = '';
          }
        }
      }
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
