// The client operations around an incident of a torture run (a controller that died, a term with two
// leaders): which writes and reads were acknowledged, failed or left unknown near it, and which
// acknowledged writes the last read of their key no longer shows. Pure: events in, text and HTML out.
import type { HistoryEvent } from './formats.ts';
import { canonical, type Json } from './history.ts';

/** one line of a Conclave history (formats.ts) */
export type ClientEvent = HistoryEvent;

/** ok: acknowledged · failed: certainly without effect · unknown: may have taken effect, or not */
export type Outcome = 'ok' | 'failed' | 'unknown';

export interface ClientOperation {
  process: string;
  f: ClientEvent['f'];
  key: string;
  /** the member it was sent to */
  node?: string;
  call: number;
  /** when the client learned the outcome or gave up; null: still open when the history ends */
  ret: number | null;
  outcome: Outcome;
  error?: string;
  /** as a reader writes it: put(k1, "c1.0-5") → ok (previous "c2.0-3") */
  text: string;
  /** the value it leaves if it takes effect (null: the key absent); none for reads and refused swaps */
  writes?: Json | null;
  /** a completed read: the value seen (null: absent) */
  read?: Json | null;
}

/** invocations paired with their completions, in the order of their calls */
export function clientOperations(events: readonly ClientEvent[]): ClientOperation[] {
  const open = new Map<string, ClientEvent>();
  const ops: ClientOperation[] = [];
  const close = (invoke: ClientEvent, done: ClientEvent | null) => {
    const outcome: Outcome = done === null || done.type === 'info' ? 'unknown' : done.type === 'fail' ? 'failed' : 'ok';
    const value = canonical(invoke.value ?? null);
    const call = invoke.f === 'get' || invoke.f === 'del' ? `${invoke.f}(${invoke.key})` : invoke.f === 'put' ? `put(${invoke.key}, ${value})` : `cas(${invoke.key}, ${canonical(invoke.expected ?? null)} → ${value})`;
    const op: ClientOperation = { process: invoke.process, f: invoke.f, key: invoke.key, call: invoke.time, ret: done?.time ?? null, outcome, text: `${call} → ${resultText(invoke, done)}` };
    if (invoke.node !== undefined) op.node = invoke.node;
    if (done?.error !== undefined) op.error = done.error;
    if (invoke.f === 'put') op.writes = value;
    if (invoke.f === 'del') op.writes = null;
    if (invoke.f === 'cas' && (outcome !== 'ok' || done?.swapped === true)) op.writes = value;
    if (invoke.f === 'get' && outcome === 'ok') op.read = done!.found === true ? canonical(done!.value ?? null) : null;
    ops.push(op);
  };
  for (const e of events) {
    if (e.type === 'invoke') {
      open.set(e.process, e);
      continue;
    }
    const invoke = open.get(e.process);
    if (invoke === undefined) continue;
    open.delete(e.process);
    close(invoke, e);
  }
  for (const invoke of open.values()) close(invoke, null);
  return ops.sort((a, b) => a.call - b.call);
}

function resultText(invoke: ClientEvent, done: ClientEvent | null): string {
  if (done === null) return '? (no answer before the history ended)';
  if (done.type === 'info') return `? (${done.error ?? 'outcome unknown'})`;
  if (done.type === 'fail') return `failed (${done.error ?? 'refused'})`;
  switch (invoke.f) {
    case 'get':
      return done.found === true ? canonical(done.value ?? null) : 'absent';
    case 'put':
      return 'previous' in done ? `ok (previous ${canonical(done.previous ?? null)})` : 'ok';
    case 'del':
      return done.deleted === undefined ? 'ok' : done.deleted ? 'deleted' : 'was absent';
    case 'cas':
      return done.swapped ? 'swapped' : 'not swapped';
  }
}

/** an acknowledged write that the last read of its key no longer shows */
export interface LostWrite {
  write: ClientOperation;
  /** the last completed read of the key, called after the write was acknowledged */
  read: ClientOperation;
  /** of the operations that could have left the value read, the last to return (null: none, the key absent from the start) */
  writer: ClientOperation | null;
}

/**
 * Acknowledged writes lost by the last read of their key: the read began after the write was
 * acknowledged, and every operation that could have left the value it saw (the same value written, or
 * a delete when it saw the key absent) had returned before the write was called. In any legal order
 * the write then came after the value's writer and before the read, with nothing writing it again.
 */
export function lostWrites(ops: readonly ClientOperation[]): LostWrite[] {
  const lost: LostWrite[] = [];
  const lastRead = new Map<string, ClientOperation>();
  for (const op of ops) if (op.read !== undefined && op.call >= (lastRead.get(op.key)?.call ?? Number.NEGATIVE_INFINITY)) lastRead.set(op.key, op);
  for (const read of lastRead.values()) {
    const writers = ops.filter((o) => o.key === read.key && o.writes !== undefined && o.outcome !== 'failed' && o.writes === read.read);
    // an unknown outcome may take effect at any time after its call: such a writer follows anything
    const mayFollow = (w: ClientOperation) => writers.some((c) => c === w || c.outcome === 'unknown' || c.ret === null || c.ret > w.call);
    for (const w of ops) {
      if (w.key !== read.key || w.outcome !== 'ok' || w.writes === undefined || w.ret === null || w.ret >= read.call) continue;
      if (!mayFollow(w)) lost.push({ write: w, read, writer: writers.reduce<ClientOperation | null>((last, c) => (last === null || c.ret! > last.ret! ? c : last), null) });
    }
  }
  return lost.sort((a, b) => a.write.call - b.write.call);
}

/** an incident of a run and the stretch of time whose client operations are shown with it */
export interface Incident {
  /** the problem as the run reports it */
  problem: string;
  /** when it happened, on the history's clock */
  at: number;
  from: number;
  to: number;
  /** why the window starts and ends where it does */
  since: string;
  until: string;
}

export interface FaultStart {
  kind: string;
  target: string;
  at: number;
}

/** a controller that died: from 2 s before the last fault begun before it to its death */
export function crashIncident(problem: string, at: number, faults: readonly FaultStart[]): Incident {
  const fault = faults.filter((f) => f.at <= at).at(-1);
  if (fault === undefined) return { problem, at, from: at - 2000, to: at, since: '2 s before it, no fault before it', until: 'the exit' };
  return { problem, at, from: fault.at - 2000, to: at, since: `2 s before ${fault.kind}${fault.target ? ` on ${fault.target}` : ''}`, until: 'the exit' };
}

/** two leaders seen in one term: from 1 s before the first sighting to 1 s after the last */
export function sightingIncident(problem: string, first: number, last: number): Incident {
  return { problem, at: first, from: first - 1000, to: last + 1000, since: '1 s before the first sighting', until: '1 s after the last' };
}

/** the operations whose [call, return] meets [from, to] (an open one runs to the end) */
export function inWindow(ops: readonly ClientOperation[], from: number, to: number): ClientOperation[] {
  return ops.filter((o) => o.call <= to && (o.ret ?? Number.POSITIVE_INFINITY) >= from);
}

export interface RenderOptions {
  /** at most this many operations per incident besides the lost writes (always listed): acknowledged and unknown ones nearest the incident first, then failed ones; the rest are counted */
  limit?: number;
  /** where the full listing is, said when rows are left out */
  fullListing?: string;
}

const ms = (t: number) => `${t >= 0 ? '+' : ''}${Math.round(t)}`;

/** per incident: the window, a count by outcome, and one row per operation (times in ms from the incident) */
export function renderIncidents(incidents: readonly Incident[], ops: readonly ClientOperation[], options: RenderOptions = {}): string {
  const lost = new Map(lostWrites(ops).map((l) => [l.write, l.read]));
  const out: string[] = [];
  incidents.forEach((incident, n) => {
    const shown = inWindow(ops, incident.from, incident.to);
    const count = (o: Outcome) => shown.filter((s) => s.outcome === o).length;
    out.push(`incident ${n + 1}: ${incident.problem.split('\n')[0]}`);
    out.push(`  client operations from ${ms(incident.from - incident.at)} ms (${incident.since}) to ${ms(incident.to - incident.at)} ms (${incident.until}): ${shown.length} (${count('ok')} ok, ${count('failed')} failed, ${count('unknown')} unknown)`);
    let rows = shown;
    if (options.limit !== undefined) {
      // the lost writes always; then the acknowledged and unknown ones nearest the incident, then failed ones
      const distance = (o: ClientOperation) => Math.max(0, o.call - incident.at, incident.at - (o.ret ?? Number.POSITIVE_INFINITY));
      const failed = (o: ClientOperation) => (o.outcome === 'failed' ? 1 : 0);
      const others = shown.filter((o) => !lost.has(o)).sort((a, b) => failed(a) - failed(b) || distance(a) - distance(b));
      const kept = new Set(others.slice(0, options.limit));
      rows = shown.filter((o) => kept.has(o) || lost.has(o));
    }
    const left = shown.filter((o) => !rows.includes(o));
    if (shown.length > 0) out.push(...table(rows, incident.at, lost));
    if (left.length > 0) {
      const kinds = new Map<string, number>();
      for (const o of left) {
        const what = o.outcome === 'failed' ? `failed ${o.error ?? ''}`.trim() : o.outcome;
        kinds.set(what, (kinds.get(what) ?? 0) + 1);
      }
      out.push(`    … and ${left.length} more not listed here (${[...kinds].map(([what, k]) => `${k} ${what}`).join(', ')})${options.fullListing ? `: every one is in ${options.fullListing}` : ''}`);
    }
    const acknowledged = shown.filter((o) => o.outcome === 'ok' && o.writes !== undefined);
    const untold = acknowledged.filter((w) => !ops.some((o) => o.key === w.key && o.read !== undefined && o.call > w.ret!)).length;
    out.push(`  acknowledged writes in this window: ${acknowledged.length}; lost (the last read of their key no longer shows them): ${acknowledged.filter((o) => lost.has(o)).length}; not told (no read of their key began after them): ${untold}`);
  });
  out.push(...lostText(lostWrites(ops), options.limit));
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** every lost write of the history, incident or not: the write, the read that no longer shows it, and who left what it shows */
function lostText(lost: readonly LostWrite[], limit = Number.POSITIVE_INFINITY): string[] {
  if (lost.length === 0) return [];
  const span = (o: ClientOperation, at: number) => `[${ms(o.call - at)}, ${o.ret === null ? 'open' : ms(o.ret - at)}]`;
  const out = [`acknowledged writes lost in the whole history: ${lost.length} (each acknowledged before the last read of its key began, which shows a value left by an operation that returned before the write was called; times in ms from that read's call)`];
  for (const { write, read, writer } of lost.slice(0, limit)) {
    const left = writer !== null ? `${writer.process}'s ${writer.text} ${span(writer, read.call)}` : read.read === null ? 'the start (the key absent)' : 'no operation of the history';
    out.push(`    ${write.process} ${write.text} ${span(write, read.call)}; then ${read.process}'s ${read.text} ${span(read, read.call)}, what ${left} left`);
  }
  if (lost.length > limit) out.push(`    … and ${lost.length - limit} more`);
  return out;
}

function table(rows: readonly ClientOperation[], at: number, lost: ReadonlyMap<ClientOperation, ClientOperation>): string[] {
  const cells = rows.map((o) => [o.process, ms(o.call - at), o.ret === null ? 'open' : ms(o.ret - at), o.outcome, o.node ?? '', o.text + lostNote(o, at, lost)]);
  const head = ['process', 'call', 'return', 'outcome', 'via', 'operation'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => `    ${c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i]!))).join('  ')}`;
  return [line(head), ...cells.map(line)];
}

function lostNote(o: ClientOperation, at: number, lost: ReadonlyMap<ClientOperation, ClientOperation>): string {
  const read = lost.get(o);
  if (read === undefined) return '';
  return `   LOST: the last read of ${o.key} (${read.process}, called at ${ms(read.call - at)} ms) saw ${read.read ?? 'it absent'}, left by an operation that returned before this one was called`;
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** the same listing as HTML sections (every operation of each window), for the run's HTML report */
export function renderIncidentsHtml(incidents: readonly Incident[], ops: readonly ClientOperation[]): string {
  if (incidents.length === 0) return '';
  const lost = new Map(lostWrites(ops).map((l) => [l.write, l.read]));
  const heading = `<h1>${incidents.length} incident(s): the client operations around each</h1>\n`;
  return heading + incidents
    .map((incident, n) => {
      const shown = inWindow(ops, incident.from, incident.to);
      const rows = shown
        .map((o) => `<tr class="${lost.has(o) ? 'lost' : o.outcome}"><td>${escapeHtml(o.process)}</td><td>${ms(o.call - incident.at)}</td><td>${o.ret === null ? 'open' : ms(o.ret - incident.at)}</td><td>${o.outcome}</td><td>${escapeHtml(o.node ?? '')}</td><td>${escapeHtml(o.text + lostNote(o, incident.at, lost))}</td></tr>`)
        .join('\n');
      return `<section><h2>incident ${n + 1}: ${escapeHtml(incident.problem.split('\n')[0]!)}</h2><p>${shown.length} client operations from ${ms(incident.from - incident.at)} ms (${escapeHtml(incident.since)}) to ${ms(incident.to - incident.at)} ms (${escapeHtml(incident.until)}); times in ms from the incident.</p>
<table><tr><th>process</th><th>call</th><th>return</th><th>outcome</th><th>via</th><th>operation</th></tr>
${rows}</table></section>`;
    })
    .join('\n');
}
