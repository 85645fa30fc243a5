// The last events of a run, as readable lines for a violation report: bus messages decoded (raft
// messages with their fields), notes from the simulator (faults, client operations, role changes).
import type { RaftMessage } from '../../machines/raft/messages.ts';
import type { Violation } from './config.ts';
import type { Delivery } from './bus.ts';

interface TraceRecord {
  step: number;
  time: number;
  text: string | null;
  delivery: Delivery | null;
  /** the delivery reached nobody: the link was cut, or nothing listened there */
  lost?: true;
}

export class Trace {
  private readonly records: TraceRecord[] = [];
  private at = 0;

  constructor(
    private readonly size: number,
    /** a node's name for its id */
    private readonly nameOf: (nodeId: string) => string,
  ) {}

  delivery(step: number, time: number, delivery: Delivery): void {
    this.records[this.at++ % this.size] = { step, time, text: null, delivery };
  }

  /** the delivery just traced reached nobody (a message cut by a partition reads otherwise like one received) */
  lost(): void {
    const last = this.records[(this.at - 1) % this.size];
    if (last?.delivery) last.lost = true;
  }

  note(step: number, time: number, text: string): void {
    this.records[this.at++ % this.size] = { step, time, text, delivery: null };
  }

  lines(): string[] {
    const lines: string[] = [];
    for (let i = Math.max(0, this.at - this.size); i < this.at; i++) {
      const r = this.records[i % this.size]!;
      lines.push(`#${r.step} t=${r.time}ms ${r.text ?? this.describeDelivery(r.delivery!)}${r.lost ? ' — lost (cut, or no receiver)' : ''}`);
    }
    return lines;
  }

  /** a bus message as a line: decoded only when a report is written */
  private describeDelivery(d: Delivery): string {
    let parsed: { type?: string; from?: string; body?: { messages?: RaftMessage[]; seq?: number; last?: boolean } };
    try {
      parsed = JSON.parse(new TextDecoder().decode(d.data));
    } catch {
      return `deliver ${d.data.byteLength} bytes on ${d.subject}`;
    }
    const to = d.to === null ? d.subject : this.nameOf(d.to);
    if (parsed.type === 'raft' && parsed.body?.messages) return `deliver ${parsed.body.messages.map((m) => describeMessage(m, this.nameOf)).join('; ')}`;
    const chunk = parsed.type === 'snapshot-chunk' ? ` seq=${parsed.body?.seq}${parsed.body?.last ? ' last' : ''}` : '';
    return `deliver ${parsed.from ?? '?'}→${to} ${parsed.type ?? '?'}${chunk} (${d.data.byteLength} bytes)`;
  }
}

export function describeMessage(m: RaftMessage, nameOf: (nodeId: string) => string = (id) => id): string {
  const head = `${nameOf(m.from)}→${nameOf(m.to)} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'vote':
    case 'pre-vote':
      return `${head} last=${m.lastTerm}:${m.lastIndex}${m.transfer ? ' transfer' : ''}`;
    case 'vote-response':
    case 'pre-vote-response':
      return `${head} ${m.granted ? 'granted' : 'rejected'}`;
    case 'append':
      return `${head} prev=${m.prevTerm}:${m.prevIndex} entries=[${m.entries.map((e) => `${e.term}:${e.index}`).join(' ')}] commit=${m.commit}`;
    case 'append-response':
      return m.reject ? `${head} reject ${m.index} hint=${m.hintTerm}:${m.rejectHint}` : `${head} ok ${m.index}`;
    case 'heartbeat':
      return `${head} commit=${m.commit}`;
    case 'heartbeat-response':
      return head;
    case 'snapshot':
      return `${head} snapshot=${m.snapshot.term}:${m.snapshot.index}`;
    case 'timeout-now':
      return head;
  }
}

/** `replayFlags`: the options beyond seed and nodes that the run used (hooks, profile, steps) */
export function formatViolation(v: Violation, replayFlags = ''): string {
  return [
    `VIOLATION of ${v.invariant} — seed ${v.seed}, ${v.nodes} nodes, step ${v.step}, t=${v.time}ms`,
    v.message,
    `last ${v.trace.length} events:`,
    ...v.trace.map((line) => `  ${line}`),
    `replay: npm run sim -- --seed ${v.seed} --nodes ${v.nodes}${replayFlags}`,
  ].join('\n');
}
