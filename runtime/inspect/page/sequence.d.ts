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
export interface MessageCount {
  from: string;
  to: string;
  type: string;
  /** messages of this flow in the window */
  n: number;
  /** of them, in the rows drawn */
  shown: number;
}
export function messageRows(
  messages: ReadonlyArray<Record<string, unknown>>,
  nameOf: (id: string) => string,
  from: number,
  to: number,
  skip?: (type: string) => boolean,
): { rows: Array<SequenceRow & { type: string; n: number; entries?: number; ok?: boolean; bytes?: number }>; total: number; omitted: number; counts: MessageCount[] };
export function sampledCounts(counts: ReadonlyArray<MessageCount>, most?: number): string;
export function renderSequence(container: unknown, rows: SequenceRow[], what?: string, empty?: string): void;
