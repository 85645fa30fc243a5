// A linearizability checker for key-value histories: the Wing–Gong search with Lowe's memoisation
// of visited (linearized set, state) pairs, as Porcupine does, run per key (a history is
// linearizable iff each key's sub-history is). Written for Conclave's torture tests.
//
// The search walks the events in time order. At a call it tries to linearize that operation now
// (the model must accept its output in the current state); at a return of an operation not yet
// linearized it backtracks. Operations with an unknown outcome return at +∞, so they may be placed
// anywhere after their call, and at the very end (which is the same as never).
import { type Input, type Json, NULL_JSON, type Operation, type Output } from './history.ts';

/** the state of one key: its value as canonical JSON, or undefined when absent */
type KeyState = Json | undefined;

/** the model's step: the state after `input` answered `output` (undefined: unknown), or null if impossible */
export function step(state: KeyState, input: Input, output: Output | undefined): KeyState | null {
  switch (input.f) {
    case 'get': {
      if (output === undefined) return state;
      if (output.f !== 'get') return null;
      const ok = output.found ? state === output.value : state === undefined;
      return ok ? state : null;
    }
    case 'put': {
      if (output !== undefined && (output.f !== 'put' || (output.previous !== undefined && output.previous !== (state ?? NULL_JSON)))) return null;
      return input.value;
    }
    case 'del': {
      if (output !== undefined && (output.f !== 'del' || (output.deleted !== undefined && output.deleted !== (state !== undefined)))) return null;
      return undefined;
    }
    case 'cas': {
      const matches = (state ?? NULL_JSON) === input.expected;
      if (output === undefined) return matches ? input.value : state;
      if (output.f !== 'cas' || output.swapped !== matches) return null;
      return matches ? input.value : state;
    }
  }
}

export type Verdict = 'linearizable' | 'not linearizable' | 'unknown';

export interface KeyResult {
  key: string;
  verdict: Verdict;
  operations: number;
  /** not linearizable: a small set of this key's operations that cannot be linearized together */
  conflict?: Operation[];
  /** not linearizable: the longest order of operations the search could linearize */
  longestPrefix?: Operation[];
}

export interface CheckResult {
  verdict: Verdict;
  keys: KeyResult[];
  /** operations checked (reads that failed, e.g. timed out, are not operations) */
  operations: number;
  elapsedMs: number;
}

export interface CheckOptions {
  /** give up (verdict unknown) after this long for the whole history; default 10 s */
  timeoutMs?: number;
  /** also search for a small conflicting set (read-only operations removed while it stays not linearizable) */
  minimize?: boolean;
  /** time for that search per key, after which the set found so far is reported; default 2 s */
  minimizeMs?: number;
}

export function checkHistory(operations: readonly Operation[], options: CheckOptions = {}): CheckResult {
  const started = performance.now();
  const deadline = started + (options.timeoutMs ?? 10_000);
  const byKey = new Map<string, Operation[]>();
  for (const op of operations) {
    const list = byKey.get(op.key);
    if (list) list.push(op);
    else byKey.set(op.key, [op]);
  }
  const keys: KeyResult[] = [];
  for (const [key, ops] of byKey) {
    const search = searchKey(ops, deadline);
    const result: KeyResult = { key, verdict: search.verdict, operations: ops.length };
    if (search.verdict === 'not linearizable') {
      result.longestPrefix = search.longest;
      result.conflict = options.minimize === false ? [...ops] : minimizeConflict(ops, performance.now() + (options.minimizeMs ?? 2000));
    }
    keys.push(result);
  }
  const verdict: Verdict = keys.some((k) => k.verdict === 'not linearizable')
    ? 'not linearizable'
    : keys.some((k) => k.verdict === 'unknown')
      ? 'unknown'
      : 'linearizable';
  return { verdict, keys, operations: operations.length, elapsedMs: performance.now() - started };
}

interface Node {
  op: Operation;
  call: boolean;
  /** a call's return node */
  match: Node | null;
  prev: Node;
  next: Node | null;
}

interface SearchResult {
  verdict: Verdict;
  longest: Operation[];
}

/** the search for one key's operations */
function searchKey(ops: readonly Operation[], deadline: number): SearchResult {
  const n = ops.length;
  // events in time order; at equal times calls come first (operations overlap: the permissive reading)
  const events: Array<{ time: number; call: boolean; index: number }> = [];
  ops.forEach((op, index) => {
    events.push({ time: op.call, call: true, index }, { time: op.ret, call: false, index });
  });
  events.sort((a, b) => a.time - b.time || (a.call === b.call ? a.index - b.index : a.call ? -1 : 1));
  const head = { next: null } as unknown as Node;
  const returns = new Array<Node | undefined>(n);
  const calls = new Array<Node | undefined>(n);
  let tail: Node = head;
  for (const e of events) {
    const node: Node = { op: ops[e.index]!, call: e.call, match: null, prev: tail, next: null };
    tail.next = node;
    tail = node;
    if (e.call) calls[e.index] = node;
    else returns[e.index] = node;
  }
  for (let i = 0; i < n; i++) calls[i]!.match = returns[i]!;
  const indexOf = new Map<Operation, number>(ops.map((op, i) => [op, i]));

  const lift = (call: Node) => {
    call.prev.next = call.next;
    if (call.next) call.next.prev = call.prev;
    const ret = call.match!;
    ret.prev.next = ret.next;
    if (ret.next) ret.next.prev = ret.prev;
  };
  const unlift = (call: Node) => {
    const ret = call.match!;
    ret.prev.next = ret;
    if (ret.next) ret.next.prev = ret;
    call.prev.next = call;
    if (call.next) call.next.prev = call;
  };

  const linearized = new Uint32Array(Math.ceil(n / 32));
  const seen = new Set<string>();
  const stack: Array<{ node: Node; state: KeyState }> = [];
  let longest: Operation[] = [];
  let state: KeyState; // every key starts absent
  let entry: Node | null = head.next;
  let steps = 0;
  while (head.next !== null) {
    if (++steps % 4096 === 0 && performance.now() > deadline) return { verdict: 'unknown', longest };
    if (entry === null) return { verdict: 'not linearizable', longest }; // unreachable: a return always precedes the end
    if (entry.call) {
      const next = step(state, entry.op.input, entry.op.output);
      if (next !== null) {
        const i = indexOf.get(entry.op)!;
        linearized[i >>> 5]! |= 1 << (i & 31);
        const key = `${linearized.join(',')}|${next ?? '\u0000'}`;
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ node: entry, state });
          if (stack.length > longest.length) longest = stack.map((s) => s.node.op);
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized[i >>> 5]! &= ~(1 << (i & 31));
      }
      entry = entry.next;
    } else {
      // an operation returned before it could be linearized: undo the last choice
      const top = stack.pop();
      if (top === undefined) return { verdict: 'not linearizable', longest };
      const i = indexOf.get(top.node.op)!;
      linearized[i >>> 5]! &= ~(1 << (i & 31));
      state = top.state;
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return { verdict: 'linearizable', longest };
}

const readOnly = (op: Operation): boolean => op.input.f === 'get' || (op.output?.f === 'cas' && !op.output.swapped);

/**
 * The operations invoked before `t`, as a client who stopped watching at `t` saw them: those still
 * running at `t` have an unknown outcome. If the history is linearizable, so is this prefix (an
 * operation invoked after `t` is ordered after every one that returned before `t`), so a prefix
 * that is not linearizable is a witness for the whole.
 */
function prefixAt(ops: readonly Operation[], t: number): Operation[] {
  return ops.filter((o) => o.call <= t).map((o) => (o.ret <= t ? o : { ...o, output: undefined, ret: Number.POSITIVE_INFINITY }));
}

/**
 * A smaller witness, in two sound steps: the shortest prefix in time that is already not
 * linearizable (binary search: being not linearizable persists as the prefix grows), then drop
 * read-only operations (they change no state, so a linearization of the whole restricts to one of
 * the rest) one at a time while it stays not linearizable. Writes are kept: without one, a read
 * could become inexplicable that was not.
 */
function minimizeConflict(ops: readonly Operation[], deadline: number): Operation[] {
  // cut just at a return (that operation's outcome is known); the last cut is the whole history
  const cuts = [...new Set(ops.map((o) => o.ret))].sort((a, b) => a - b);
  if (cuts[cuts.length - 1] !== Number.POSITIVE_INFINITY) cuts.push(Number.POSITIVE_INFINITY);
  // invariant: the prefix at cuts[hi] is not linearizable
  let lo = -1;
  let hi = cuts.length - 1;
  while (hi - lo > 1 && performance.now() < deadline) {
    const mid = (lo + hi) >> 1;
    if (searchKey(prefixAt(ops, cuts[mid]!), deadline).verdict === 'not linearizable') hi = mid;
    else lo = mid;
  }
  let kept = prefixAt(ops, cuts[hi]!);
  for (const op of [...kept]) {
    if (!readOnly(op) || performance.now() > deadline) continue;
    const without = kept.filter((o) => o !== op);
    if (searchKey(without, deadline).verdict === 'not linearizable') kept = without;
  }
  return kept.sort((a, b) => a.call - b.call);
}

