// Types of sequence.js for the Node tests (the page itself is plain JavaScript, no build step).
export interface SequenceRow {
  t: number;
  /** a message: from one node to another */
  from?: string;
  to?: string;
  /** a note at one node */
  at?: string;
  label: string;
  bad?: boolean;
}
export function sequenceRows(handshakes: ReadonlyArray<Record<string, unknown>>, refusals?: ReadonlyArray<Record<string, unknown>>): SequenceRow[];
export function messageRows(
  messages: ReadonlyArray<Record<string, unknown>>,
  nameOf: (id: string) => string,
  from: number,
  to: number,
): { rows: Array<SequenceRow & { type: string; n: number }>; total: number; omitted: number };
export function renderSequence(container: unknown, rows: SequenceRow[], what?: string, empty?: string): void;
