// Reading histories: Jepsen's log lines (a single register) and Conclave's own JSON lines (a KV).
// Both are event logs: an `invoke` opens a process's operation, `ok` / `fail` / `info` closes it.
// `fail` means it had no effect (in Jepsen's logs a failed compare-and-set is also an observation
// that the value differed; in Conclave's, a cas that did not swap is `ok` with `swapped: false`);
// `info` means the outcome is unknown (it may take effect any time after the call).
import { canonical, type Input, type Json, NULL_JSON, type Operation, type Output } from './history.ts';

export type Format = 'jepsen' | 'conclave';

/** one line of a Conclave history (the torture suite writes them, `conclave` reads them): an invocation or its completion */
export interface HistoryEvent {
  process: string;
  type: 'invoke' | 'ok' | 'fail' | 'info';
  f: 'get' | 'put' | 'del' | 'cas';
  key: string;
  time: number;
  value?: unknown;
  expected?: unknown;
  found?: boolean;
  previous?: unknown;
  deleted?: boolean;
  swapped?: boolean;
  /** the error that ended it (fail / info), for the report */
  error?: string;
  node?: string;
}


export class HistoryFormatError extends Error {}

interface Pending {
  process: string;
  key: string;
  input: Input;
  call: number;
  line: number;
}

/** turns open/close events into operations; shared by both formats */
class Builder {
  private readonly open = new Map<string, Pending>();
  readonly operations: Operation[] = [];

  invoke(p: Pending): void {
    if (this.open.has(p.process)) throw new HistoryFormatError(`line ${p.line}: process ${p.process} invokes while its operation of line ${this.open.get(p.process)!.line} is still open`);
    this.open.set(p.process, p);
  }

  complete(process: string, line: number, time: number, outcome: { type: 'ok'; output: Output } | { type: 'fail'; output: Output | null } | { type: 'info' }): void {
    const p = this.open.get(process);
    if (!p) throw new HistoryFormatError(`line ${line}: process ${process} completes an operation it never invoked`);
    this.open.delete(process);
    const base = { id: this.operations.length, process, key: p.key, input: p.input, call: p.call };
    if (outcome.type === 'info') this.operations.push({ ...base, output: undefined, ret: Number.POSITIVE_INFINITY });
    else if (outcome.output !== null) this.operations.push({ ...base, output: outcome.output, ret: time });
    // a failure without an observation had no effect: it is not an operation of the history
  }

  finish(): Operation[] {
    // still open at the end of the log: the client never learned the outcome
    for (const p of this.open.values()) {
      this.operations.push({ id: this.operations.length, process: p.process, key: p.key, input: p.input, output: undefined, call: p.call, ret: Number.POSITIVE_INFINITY });
    }
    this.open.clear();
    return this.operations;
  }
}

const JEPSEN_LINE = /jepsen\.util - (\S+)\s+:(invoke|ok|fail|info)\s+:(read|write|cas)\s+(.*?)\s*$/;

/** Jepsen's etcd register logs: `INFO  jepsen.util - <process> <type> <op> <value>`; other lines are ignored */
export function parseJepsen(text: string): Operation[] {
  const builder = new Builder();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = JEPSEN_LINE.exec(lines[i]!);
    if (!m) continue;
    const [, process, type, f, raw] = m as unknown as [string, string, string, string, string];
    const lineNo = i + 1;
    if (type === 'invoke') {
      let input: Input;
      if (f === 'read') input = { f: 'get' };
      else if (f === 'write') input = { f: 'put', value: jepsenValue(raw, lineNo) };
      else {
        const [expected, value] = jepsenPair(raw, lineNo);
        input = { f: 'cas', expected, value };
      }
      builder.invoke({ process, key: 'register', input, call: lineNo, line: lineNo });
      continue;
    }
    if (type === 'info') {
      builder.complete(process, lineNo, lineNo, { type: 'info' });
      continue;
    }
    if (type === 'fail') {
      // a cas that failed saw another value; a failed read or write had no effect
      builder.complete(process, lineNo, lineNo, { type: 'fail', output: f === 'cas' ? { f: 'cas', swapped: false } : null });
      continue;
    }
    let output: Output;
    if (f === 'read') {
      const value = jepsenValue(raw, lineNo);
      output = raw === 'nil' ? { f: 'get', found: false, value: NULL_JSON } : { f: 'get', found: true, value };
    } else if (f === 'write') output = { f: 'put' };
    else output = { f: 'cas', swapped: true };
    builder.complete(process, lineNo, lineNo, { type: 'ok', output });
  }
  return builder.finish();
}

function jepsenValue(raw: string, line: number): Json {
  if (raw === 'nil') return NULL_JSON;
  if (!/^-?\d+$/.test(raw)) throw new HistoryFormatError(`line ${line}: expected a number or nil, got ${JSON.stringify(raw)}`);
  return canonical(Number(raw));
}

function jepsenPair(raw: string, line: number): [Json, Json] {
  const m = /^\[(\S+) (\S+)\]$/.exec(raw);
  if (!m) throw new HistoryFormatError(`line ${line}: expected [expected new], got ${JSON.stringify(raw)}`);
  return [jepsenValue(m[1]!, line), jepsenValue(m[2]!, line)];
}

/**
 * Conclave's history: one JSON object per line,
 *   {"process":"c1","type":"invoke","f":"put","key":"k","value":…,"time":12.5}
 *   {"process":"c1","type":"ok","f":"put","key":"k","previous":…,"time":13.1}
 * f: get (ok: found, value) · put (invoke: value; ok: previous, optional) · del (ok: deleted, optional)
 * · cas (invoke: expected, value; ok: swapped). time: any monotonic clock, in one unit.
 */
export function parseConclave(text: string): Operation[] {
  const builder = new Builder();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const lineNo = i + 1;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch (err) {
      throw new HistoryFormatError(`line ${lineNo}: not JSON (${(err as Error).message})`);
    }
    if (e === null || typeof e !== 'object') throw new HistoryFormatError(`line ${lineNo}: expected an object`);
    const process = String(e.process);
    const time = e.time;
    const f = e.f;
    if (typeof time !== 'number' || !Number.isFinite(time)) throw new HistoryFormatError(`line ${lineNo}: "time" must be a finite number`);
    if (f !== 'get' && f !== 'put' && f !== 'del' && f !== 'cas') throw new HistoryFormatError(`line ${lineNo}: "f" must be get, put, del or cas`);
    if (e.type === 'invoke') {
      if (typeof e.key !== 'string') throw new HistoryFormatError(`line ${lineNo}: "key" must be a string`);
      const input: Input =
        f === 'get' || f === 'del' ? { f } : f === 'put' ? { f, value: canonical(e.value ?? null) } : { f, expected: canonical(e.expected ?? null), value: canonical(e.value ?? null) };
      builder.invoke({ process, key: e.key, input, call: time, line: lineNo });
    } else if (e.type === 'info') {
      builder.complete(process, lineNo, time, { type: 'info' });
    } else if (e.type === 'fail') {
      // refused before it could take effect (a cas that compared and did not swap is an `ok` with swapped: false)
      builder.complete(process, lineNo, time, { type: 'fail', output: null });
    } else if (e.type === 'ok') {
      let output: Output;
      if (f === 'get') output = { f, found: e.found === true, value: e.found === true ? canonical(e.value ?? null) : NULL_JSON };
      else if (f === 'put') output = { f, previous: 'previous' in e ? canonical(e.previous ?? null) : undefined };
      else if (f === 'del') output = { f, deleted: typeof e.deleted === 'boolean' ? e.deleted : undefined };
      else {
        if (typeof e.swapped !== 'boolean') throw new HistoryFormatError(`line ${lineNo}: a completed cas needs "swapped": true or false`);
        output = { f, swapped: e.swapped };
      }
      builder.complete(process, lineNo, time, { type: 'ok', output });
    } else {
      throw new HistoryFormatError(`line ${lineNo}: "type" must be invoke, ok, fail or info`);
    }
  }
  return builder.finish();
}

export function parseHistory(text: string, format: Format): Operation[] {
  return format === 'jepsen' ? parseJepsen(text) : parseConclave(text);
}
