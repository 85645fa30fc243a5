// What the torture suite reads in its controllers' output (pino JSON lines, plus the CLI's `error: `
// line): the leaders of each term, the two-leader refusals, and what stopped a controller.

export interface ControllerLog {
  name: string;
  text: string;
}

/** a term anomaly as reported, with the pino times (epoch ms) of its first and last sighting */
export interface TermSighting {
  problem: string;
  first: number;
  last: number;
}

/** the `time` of a pino line; NaN when it has none */
function timeOf(line: string): number {
  const m = /"time":(\d+)/.exec(line);
  return m ? Number(m[1]) : Number.NaN;
}

/** each match of `pattern` (one capture group) in the log's lines, with the line's time */
function* matches(text: string, pattern: RegExp): Generator<{ captured: string; time: number }> {
  for (const line of text.split('\n')) for (const m of line.matchAll(pattern)) yield { captured: m[1]!, time: timeOf(line) };
}

function widen(s: Map<string, { first: number; last: number }>, key: string, time: number): void {
  const seen = s.get(key) ?? { first: time, last: time };
  if (time < seen.first) seen.first = time;
  if (time > seen.last) seen.last = time;
  s.set(key, seen);
}

/**
 * Every controller logs `role leader, term N` when it becomes leader: no term may have two (nor may a
 * member hear two). Pushes a problem for each anomaly and returns them with when they were seen.
 */
export function checkOneLeaderPerTerm(logs: readonly ControllerLog[], problems: string[]): TermSighting[] {
  const sightings: TermSighting[] = [];
  const leaders = new Map<number, Map<string, { first: number; last: number }>>();
  for (const c of logs) {
    for (const { captured, time } of matches(c.text, /"msg":"role leader, term (\d+)/g)) {
      const term = Number(captured);
      const names = leaders.get(term) ?? new Map<string, { first: number; last: number }>();
      widen(names, c.name, time);
      leaders.set(term, names);
    }
  }
  // a core that hears a heartbeat or append from a second leader of its own term refuses it and logs why
  for (const c of logs) {
    const seen = new Map<string, { first: number; last: number }>();
    for (const { captured, time } of matches(c.text, /"reason":"two-leaders","detail":"([^"]*)"/g)) widen(seen, captured, time);
    for (const [detail, { first, last }] of seen) {
      const problem = `${c.name} saw two leaders in one term: ${detail}`;
      problems.push(problem);
      sightings.push({ problem, first, last });
    }
  }
  if (leaders.size === 0) problems.push('no controller logged a leadership (the leader-per-term check found nothing to check)');
  for (const [term, names] of leaders) {
    if (names.size <= 1) continue;
    const problem = `term ${term} had ${names.size} leaders: ${[...names.keys()].join(', ')}`;
    problems.push(problem);
    // from the first leader's line to the last one's: the stretch in which the term had more than one
    const firsts = [...names.values()].map((t) => t.first);
    sightings.push({ problem, first: Math.min(...firsts), last: Math.max(...firsts) });
  }
  return sightings;
}

/** the controller's last `error: ` line (what stopped it), else the last error or stack trace it printed */
export function lastErrorLine(log: string): string {
  const lines = log.split('\n');
  const stated = lines.findLast((l) => l.startsWith('error: '));
  if (stated !== undefined) return stated.slice(0, 400);
  for (let i = lines.length - 1; i >= 0; i--) if (/Error\b|"level":[56]0/.test(lines[i]!)) return lines[i]!.slice(0, 400);
  return '(no error line in its output)';
}
