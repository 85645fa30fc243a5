// The layer rules of ARCHITECTURE.md, checked on every run of the suite:
//   1. machines/ is pure: it imports only its own files and the packages below, and reads no clock,
//      timer, randomness or process (time and randomness are passed in);
//   2. actors/ imports nothing from the surfaces: runtime/cli/**, runtime/inspect/**, runtime/controller.ts;
//   3. no import cycle between folders (machines, actors, runtime/<subfolder>, each runtime/*.ts);
//   4. actors/controller/ reads no clock, sets no timer and draws no randomness of its own: it uses
//      the context's `clock` and `random` (actors/controller/context.ts), so the demo's pause and
//      the simulator's virtual time hold the controller's timers as they hold the member's.
// A violation is printed as file:line and the import (or the cycle's path and the imports that make it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cyclePath, cycles, folderGraph, type Import, type ImpureUse, isBuiltin, layerOf, packageOf, scan, sourceFiles } from './imports.ts';

/** the only packages machines/ may import: neither does I/O, reads a clock or draws randomness */
const PURE_PACKAGES = new Set(['xstate', 'zod']);
/** what actors/controller/ must not use: the process's clock, timers and randomness (runtime/controller.ts passes them in) */
const CLOCK_AND_RANDOM = new Set(['Date.now', 'new Date()', 'performance', 'setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate', 'Math.random']);
/** what actors/ must not import: the surfaces a user touches */
const SURFACES = [/^runtime\/cli\//, /^runtime\/inspect\//, /^runtime\/controller\.ts$/];

/**
 * Violations present when this rule was written, to be fixed by the work moving code into actors/
 * (issue #10). The coordinator empties this list after that merge; until then each entry is
 * reported, not failed on, and an entry that no longer occurs fails the test (remove it).
 * Entries: `machines <file> -> <specifier>` / `actors <file> -> <specifier>` (rules 1, 2) or
 * `cycle <a> → <b> → … → <a>` (rule 3).
 */
const KNOWN_VIOLATIONS: readonly string[] = [];

const files = sourceFiles();
const scans = files.map((file) => ({ file, ...scan(file) }));
const imports = scans.flatMap((s) => s.imports);

function checkAgainstKnown(kind: string, found: Array<{ key: string; detail: string }>): void {
  const known = new Set(KNOWN_VIOLATIONS.filter((k) => k.startsWith(`${kind} `)));
  const fresh = found.filter((v) => !known.has(v.key));
  const stillThere = new Set(found.map((v) => v.key));
  const gone = [...known].filter((k) => !stillThere.has(k));
  for (const v of found.filter((f) => known.has(f.key))) console.log(`# known violation (KNOWN_VIOLATIONS): ${v.detail}`);
  assert.deepEqual(fresh.map((v) => v.detail), [], `layer rule broken:\n  ${fresh.map((v) => v.detail).join('\n  ')}`);
  assert.deepEqual(gone, [], `no longer violated, remove from KNOWN_VIOLATIONS in test/layers/layers.test.ts:\n  ${gone.join('\n  ')}`);
}

const importViolation = (rule: string, imp: Import, why: string) => ({
  key: `${rule} ${imp.file} -> ${imp.specifier}`,
  detail: `${imp.file}:${imp.line} imports '${imp.specifier}': ${why}`,
});

test('the scan sees the source tree (a scan that finds nothing would pass every rule)', () => {
  const byLayer = (layer: string) => files.filter((f) => layerOf(f)?.startsWith(layer)).length;
  console.log(`# files: machines ${byLayer('machines')}, actors ${byLayer('actors')}, runtime ${byLayer('runtime')}; imports ${imports.length}`);
  assert.ok(byLayer('machines') >= 10 && byLayer('actors') >= 1 && byLayer('runtime') >= 20, 'too few source files found');
  assert.ok(imports.some((i) => i.file.startsWith('machines/') && i.specifier === 'xstate'), 'machines/ imports of xstate not seen');
  assert.ok(imports.some((i) => i.file === 'runtime/controller.ts' && i.target?.startsWith('actors/')), 'runtime/controller.ts → actors/ not seen');
});

test('machines/ imports nothing with I/O, clocks or randomness, and uses none', () => {
  const found: Array<{ key: string; detail: string }> = [];
  for (const imp of imports.filter((i) => i.file.startsWith('machines/'))) {
    if (imp.target !== null) {
      if (!imp.target.startsWith('machines/')) found.push(importViolation('machines', imp, 'machines/ imports only machines/'));
    } else if (isBuiltin(imp.specifier)) {
      found.push(importViolation('machines', imp, 'a Node builtin (I/O, clock or randomness) in the pure layer'));
    } else if (!PURE_PACKAGES.has(packageOf(imp.specifier)!)) {
      found.push(importViolation('machines', imp, `only ${[...PURE_PACKAGES].join(', ')} may be imported by machines/`));
    }
  }
  const impure: ImpureUse[] = scans.filter((s) => s.file.startsWith('machines/')).flatMap((s) => s.impure);
  for (const use of impure) {
    found.push({ key: `machines ${use.file} uses ${use.what}`, detail: `${use.file}:${use.line} uses ${use.what}: pass time and randomness in` });
  }
  checkAgainstKnown('machines', found);
});

test('actors/ imports nothing from the CLI, the inspector or the controller facade', () => {
  const found = imports
    .filter((i) => i.file.startsWith('actors/') && i.target !== null && SURFACES.some((s) => s.test(i.target!)))
    .map((i) => importViolation('actors', i, 'actors/ must not depend on runtime/cli, runtime/inspect or runtime/controller.ts'));
  checkAgainstKnown('actors', found);
});

test('no import cycle between folders', () => {
  const graph = folderGraph(imports);
  const found = cycles(graph).map((component) => {
    const path = cyclePath(graph, component);
    const steps = path.split(' → ');
    const edges = steps.slice(1).map((to, i) => {
      const via = graph.get(steps[i]!)!.get(to)!;
      return `    ${steps[i]} → ${to}: ${via.map((imp) => `${imp.file}:${imp.line}`).join(', ')}`;
    });
    return { key: `cycle ${path}`, detail: `cycle ${path} (folders involved: ${component.join(', ')})\n${edges.join('\n')}` };
  });
  checkAgainstKnown('cycle', found);
});

test("actors/controller/ uses the context's clock and randomness, never the process's", () => {
  const uses = scans.filter((s) => s.file.startsWith('actors/controller/')).flatMap((s) => s.impure);
  const found = uses
    .filter((use) => CLOCK_AND_RANDOM.has(use.what.replace(/^globalThis\./, '')))
    .map((use) => ({ key: `controller ${use.file} uses ${use.what}`, detail: `${use.file}:${use.line} uses ${use.what}: use the ControllerContext's clock / random` }));
  console.log(`# actors/controller/: ${scans.filter((s) => s.file.startsWith('actors/controller/')).length} files scanned, ${found.length} direct clock/timer/random uses`);
  checkAgainstKnown('controller', found);
});
