// The golden-output file format of the scenario scripts, as in etcd's datadriven tests: a command
// that prints something is followed by its output, between a `----` line and a blank line.
//
//   deliver rounds=1
//   ----
//   1→2 vote term=2 last=1:1
//     2: term 1→2
//     2→1 vote-response term=2 granted
//
// Running a script produces the same text with every block as it is now; a difference is a change
// in behaviour (an extra, missing or reordered message) that the test reports, and that
// REWRITE=1 (or `node --import tsx test/raft/cli.ts --rewrite`) writes back for review.
import { readFileSync, writeFileSync } from 'node:fs';

export const SEPARATOR = '----';

/** the interpreter: runs one command (comments removed) and returns what it printed */
export type Execute = (command: string, line: number) => string[];

export interface Mismatch {
  /** 1-based line of the command in the file */
  line: number;
  command: string;
  expected: string[];
  got: string[];
}

export interface GoldenRun {
  /** the script with every output block as produced by this run */
  text: string;
  mismatches: Mismatch[];
}

/** Runs `script` command by command, keeping comments and blank lines, and rebuilds its output blocks. */
export function runGolden(script: string, execute: Execute): GoldenRun {
  const lines = script.split('\n');
  const out: string[] = [];
  const mismatches: Mismatch[] = [];
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    out.push(raw);
    const command = raw.replace(/#.*$/, '').trim();
    if (command === '') continue;
    const at = i + 1;
    if (command === SEPARATOR) throw new Error(`line ${at}: an output block without a command before it`);
    let expected: string[] = [];
    if (lines[i + 1] === SEPARATOR) {
      let end = i + 2;
      while (end < lines.length && lines[end] !== '') end++;
      expected = lines.slice(i + 2, end);
      i = end < lines.length ? end : end - 1; // the blank line closing the block is re-emitted with it
    }
    const got = execute(command, at);
    emit(out, got);
    if (!sameLines(expected, got)) mismatches.push({ line: at, command, expected, got });
  }
  return { text: out.join('\n'), mismatches };
}

function emit(out: string[], got: string[]): void {
  if (got.length === 0) return;
  for (const line of got) {
    if (line.trim() === '' || line === SEPARATOR) throw new Error(`output line ${JSON.stringify(line)} would end its block`);
  }
  out.push(SEPARATOR, ...got, '');
}

function sameLines(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((line, i) => line === b[i]);
}

/** the first mismatches, readable: where, the command, and its block as a diff (- expected, + got) */
export function describeMismatches(name: string, mismatches: Mismatch[], limit = 3): string {
  const shown = mismatches.slice(0, limit).map((m) => `${name}:${m.line}: ${m.command}\n${lineDiff(m.expected, m.got).join('\n')}`);
  const more = mismatches.length > limit ? `\n… and ${mismatches.length - limit} more` : '';
  return (
    `${name}: the golden output differs at ${mismatches.length} command(s) ` +
    '(if the change is intended, rewrite with REWRITE=1 node scripts/run-tests.mjs test/raft/scenarios and review the diff)\n' +
    shown.join('\n') +
    more
  );
}

/** a line diff by longest common subsequence: "  same", "- expected only", "+ got only" */
export function lineDiff(expected: string[], got: string[]): string[] {
  const n = expected.length;
  const m = got.length;
  // common[i][j]: length of the longest common subsequence of expected[i..] and got[j..]
  const common = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      common[i]![j] = expected[i] === got[j] ? common[i + 1]![j + 1]! + 1 : Math.max(common[i + 1]![j]!, common[i]![j + 1]!);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i] === got[j]) {
      out.push(`    ${expected[i]}`);
      i++;
      j++;
    }
    else if (j < m && (i === n || common[i]![j + 1]! >= common[i + 1]![j]!)) out.push(`  + ${got[j++]}`);
    else out.push(`  - ${expected[i++]}`);
  }
  return out;
}

/** Checks (or, with rewrite, rewrites) one script file; returns the mismatches this run found. */
export function checkFile(path: URL, run: (script: string) => GoldenRun, rewrite: boolean): Mismatch[] {
  const script = readFileSync(path, 'utf8');
  const result = run(script);
  if (rewrite && result.text !== script) writeFileSync(path, result.text);
  return result.mismatches;
}
