// The clients of the torture suite: closed-loop workers doing get/put/cas/del on a few keys through
// different members, every operation recorded (invoke, then ok / fail / info) in Conclave's
// history format for the linearizability checker (test/linearizability/formats.ts).
import { adminRequest } from '../../runtime/cli/client.ts';
import { codeOf } from '../../runtime/errors.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import type { HistoryEvent } from '../linearizability/formats.ts';
import type { Prng } from '../sim/prng.ts';
import { testOperator } from '../helpers/testOperator.ts';

/** errors after which a write certainly did not take effect; any other error leaves its outcome unknown */
const DEFINITELY_NOT_APPLIED = new Set(['NOT_LEADER', 'NO_LEADER', 'BUSY', 'BAD_REQUEST', 'NO_RESPONDERS', 'CONFIG_CHANGE_PENDING']);

export type { HistoryEvent };

export interface Workload {
  readonly events: HistoryEvent[];
  /** acknowledged writes: when each was invoked and acknowledged (availability figures) */
  readonly acknowledgedWrites: Array<{ invoked: number; acked: number }>;
  stop(): Promise<void>;
}

export interface WorkloadOptions {
  bus: Bus;
  prefix: string;
  /** the members a client may send to, asked anew for each operation */
  targets: () => string[];
  clients: number;
  keys: number;
  random: Prng;
  opTimeoutMs: number;
}

export function startWorkload(opts: WorkloadOptions): Workload {
  const events: HistoryEvent[] = [];
  const acknowledgedWrites: Array<{ invoked: number; acked: number }> = [];
  let stopping = false;
  let unique = 0;
  const lastSeen = new Map<string, unknown>();

  const one = async (process: string): Promise<'ok' | 'info' | 'fail'> => {
    const { random } = opts;
    const key = `k${random.int(opts.keys)}`;
    const targets = opts.targets();
    const node = targets[random.int(targets.length)]!;
    const roll = random.next();
    const f: HistoryEvent['f'] = roll < 0.4 ? 'get' : roll < 0.75 ? 'put' : roll < 0.9 ? 'cas' : 'del';
    const value = `${process}-${unique++}`;
    const expected = lastSeen.get(key) ?? null;
    const invoke: HistoryEvent = { process, type: 'invoke', f, key, time: performance.now(), node };
    if (f === 'put' || f === 'cas') invoke.value = value;
    if (f === 'cas') invoke.expected = expected;
    events.push(invoke);
    try {
      if (f === 'get') {
        const r = (await adminRequest(opts.bus, opts.prefix, node, 'read', { query: { op: 'get', key } }, opts.opTimeoutMs)) as { found: boolean; value: unknown };
        events.push({ process, type: 'ok', f, key, time: performance.now(), found: r.found, value: r.value });
        if (r.found) lastSeen.set(key, r.value);
        return 'ok';
      }
      const command = f === 'put' ? { op: 'put', key, value } : f === 'del' ? { op: 'del', key } : { op: 'cas', key, expected, value };
      const r = (await adminRequest(opts.bus, opts.prefix, node, 'propose', { command }, opts.opTimeoutMs, testOperator().signer)) as { previous?: unknown; deleted?: boolean; swapped?: boolean };
      const done: HistoryEvent = { process, type: 'ok', f, key, time: performance.now() };
      if (f === 'put') done.previous = r.previous;
      if (f === 'del') done.deleted = r.deleted;
      if (f === 'cas') done.swapped = r.swapped;
      events.push(done);
      acknowledgedWrites.push({ invoked: invoke.time, acked: done.time });
      if (f !== 'del' && (f === 'put' || r.swapped)) lastSeen.set(key, value);
      return 'ok';
    } catch (err) {
      const code = codeOf(err) ?? (err instanceof Error ? err.message : String(err));
      // a read has no effect: any error is a failure; a write's outcome is unknown unless the error says otherwise
      const type = f === 'get' || DEFINITELY_NOT_APPLIED.has(code) ? 'fail' : 'info';
      events.push({ process, type, f, key, time: performance.now(), error: code });
      return type;
    }
  };

  const worker = async (index: number) => {
    let incarnation = 0;
    while (!stopping) {
      // a client whose operation's outcome is unknown goes on as a new process (as Jepsen does)
      const outcome = await one(`c${index}.${incarnation}`);
      if (outcome === 'info') incarnation++;
      if (outcome !== 'ok') await new Promise((r) => setTimeout(r, 20));
    }
  };
  const running = Promise.all(Array.from({ length: opts.clients }, (_, i) => worker(i)));
  return {
    events,
    acknowledgedWrites,
    async stop() {
      stopping = true;
      await running;
    },
  };
}
