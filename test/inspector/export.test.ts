// `conclave machines export`: the statecharts as Mermaid (checked structurally here; drawn by the
// real renderers in diagrams.test.ts), DOT and JSON, with the raft chart's `always` transitions and named guards.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { toDot, toMermaid } from '../../runtime/inspect/diagrams.ts';
import { allMachineDefinitions, type MachineDef } from '../../runtime/inspect/machines.ts';
import { runCli } from '../helpers/cli.ts';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.ts';

/** A small parser for the subset of Mermaid stateDiagram-v2 we emit; throws on anything else. */
function parseMermaidStateDiagram(text: string): { states: Set<string>; names: Map<string, string>; edges: Array<{ from: string; to: string; label: string }>; initial: string[] } {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  assert.equal(lines[0], 'stateDiagram-v2', 'the diagram starts with stateDiagram-v2');
  const states = new Set<string>();
  const edges: Array<{ from: string; to: string; label: string }> = [];
  const initial: string[] = [];
  const names = new Map<string, string>();
  let depth = 0;
  const ID = '[A-Za-z_][A-Za-z0-9_]*';
  const match = (re: string, line: string) => new RegExp(re).exec(line);
  for (const line of lines.slice(1)) {
    if (line.startsWith('%%') || /^direction (LR|RL|TB|BT)$/.test(line)) continue;
    const start = match(`^\\[\\*\\] --> (${ID})$`, line);
    const final = match(`^(${ID}) --> \\[\\*\\]$`, line);
    const edge = match(`^(${ID}) --> (${ID})(?: : ([^:;#{}]+))?$`, line);
    const composite = match(`^state (${ID}) \\{$`, line);
    const note = match(`^(${ID}) : ([^:;#{}]+)$`, line);
    const named = match(`^state "([^"]+)" as (${ID})$`, line);
    const styled = /^classDef [A-Za-z]+ [^;]+$/.test(line) || match(`^class ${ID} [A-Za-z]+$`, line);
    if (start) {
      initial.push(start[1]!);
      states.add(start[1]!);
    } else if (final) {
      states.add(final[1]!);
    } else if (edge) {
      states.add(edge[1]!);
      states.add(edge[2]!);
      edges.push({ from: edge[1]!, to: edge[2]!, label: edge[3] ?? '' });
    } else if (composite) {
      states.add(composite[1]!);
      depth++;
    } else if (line === '}') {
      depth--;
      assert.ok(depth >= 0, 'braces balance');
    } else if (note) {
      states.add(note[1]!);
    } else if (named) {
      states.add(named[2]!);
      names.set(named[2]!, named[1]!);
    } else if (styled) {
      // the "(any state)" box is dashed
    } else {
      assert.fail(`not a Mermaid state diagram line: ${JSON.stringify(line)}`);
    }
  }
  assert.equal(depth, 0, 'every composite state is closed');
  return { states, names, edges, initial };
}

const defs = allMachineDefinitions();
const byName = (name: string): MachineDef => defs.find((d) => d.name === name)!;

describe('machines export', () => {
  it('includes the raft role chart’s always transitions with their guards (toJSON omits them)', () => {
    const raft = byName('raft');
    const always = raft.transitions.filter((t) => t.kind === 'always');
    assert.equal(always.length, 17, 'every role change of the raft chart');
    const toLeader = always.find((t) => t.source === 'raftRole.candidate' && t.targets[0] === 'raftRole.leader');
    assert.equal(toLeader?.guard, 'coreRoleIs(role=leader)');
    assert.ok(raft.transitions.some((t) => t.kind === 'after' && t.label === 'after tickInterval'));
    assert.deepEqual(
      raft.internal.map((t) => t.eventType),
      ['PEER_MESSAGE', 'PROPOSE', 'READ_INDEX', 'TRANSFER'],
    );
  });

  it('names invoked actors in done/error transitions of the bootstrap chart', () => {
    const bootstrap = byName('bootstrap');
    const labels = bootstrap.transitions.map((t) => `${t.source}>${t.targets.join()}:${t.label}`);
    assert.ok(labels.includes('bootstrap.bootstrapping>bootstrap.member:done bootstrapCluster'));
    assert.ok(labels.includes('bootstrap.bootstrapping>bootstrap.failed:error bootstrapCluster [startedFromInitFrom]'));
    assert.ok(labels.includes('bootstrap.uninitialized>bootstrap.bootstrapping:INIT [mayInit]'));
  });

  for (const def of defs) {
    it(`${def.name}: Mermaid parses as a state diagram with every state and transition`, () => {
      const parsed = parseMermaidStateDiagram(toMermaid(def));
      assert.deepEqual(parsed.initial, [def.initial!.split('.').pop()]);
      for (const s of def.states) assert.ok(parsed.states.has(s.key), `state ${s.key} is drawn`);
      assert.equal(parsed.edges.length, def.transitions.reduce((n, t) => n + t.targets.length, 0));
    });

    it(`${def.name}: DOT has one edge per transition`, () => {
      const dot = toDot(def);
      assert.match(dot, /^digraph "/);
      assert.equal((dot.match(/ -> "/g) ?? []).length - (def.initial ? 1 : 0), def.transitions.length);
      assert.ok(dot.trimEnd().endsWith('}'));
    });
  }

  it('the CLI prints Mermaid, DOT and JSON, and refuses an unknown machine with exit 2', async () => {
    const mermaid = await runCli(['machines', 'export', 'raft', '--format', 'mermaid']);
    assert.equal(mermaid.code, 0, mermaid.stderr);
    const parsed = parseMermaidStateDiagram(mermaid.stdout);
    assert.ok(parsed.edges.some((e) => e.from === 'candidate' && e.to === 'leader' && e.label.includes('coreRoleIs(role=leader)')));

    const all = await runCli(['machines', 'export']);
    assert.equal(all.code, 0, all.stderr);
    const diagrams = all.stdout.split(/\n(?=stateDiagram-v2)/);
    assert.equal(diagrams.length, defs.length);
    for (const d of diagrams) parseMermaidStateDiagram(d);

    const json = await runCli(['machines', 'export', 'bootstrap', '--format', 'json']);
    assert.equal(json.code, 0, json.stderr);
    assert.equal((JSON.parse(json.stdout) as MachineDef).id, 'bootstrap');

    const dot = await runCli(['machines', 'export', 'bootstrap', '--format', 'dot']);
    assert.match(dot.stdout, /"bootstrap.uninitialized" -> "bootstrap.bootstrapping" \[label="INIT \[mayInit\]"\]/);

    const unknown = await runCli(['machines', 'export', 'nope']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^error: no machine named "nope"; known: bootstrap, raft/);
  });

  it('--out DIR writes one file per machine, each one input for its renderer', async (t) => {
    const dir = makeTmpDir('conclave-export-');
    t.after(() => removeTmpDir(dir));
    const res = await runCli(['machines', 'export', '--format', 'dot', '--out', join(dir, 'charts')]);
    assert.equal(res.code, 0, res.stderr);
    const files = res.stdout.trim().split('\n');
    assert.deepEqual(files, defs.map((d) => join(dir, 'charts', `${d.name}.dot`)));
    for (const def of defs) assert.equal(await readFile(join(dir, 'charts', `${def.name}.dot`), 'utf8'), toDot(def));

    const mermaid = await runCli(['machines', 'export', 'membership', '--out', dir]);
    assert.equal(mermaid.code, 0, mermaid.stderr);
    const parsed = parseMermaidStateDiagram(await readFile(join(dir, 'membership.mmd'), 'utf8'));
    assert.equal(parsed.names.get('any_state'), '(any state)', 'the root-level deadline starts from the "(any state)" box');
    assert.ok(parsed.edges.some((e) => e.from === 'any_state' && e.to === 'failed' && e.label === 'after deadline'));
    assert.ok(!parsed.states.has('membership'), 'no box named after the machine');

    const blocked = await runCli(['machines', 'export', '--out', join(dir, 'charts', 'raft.dot', 'sub')]);
    assert.equal(blocked.code, 2);
    assert.match(blocked.stderr, /^error: cannot write the diagrams to .*--out DIR/);
  });
});
