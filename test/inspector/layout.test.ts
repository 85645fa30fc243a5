// Every machine the inspector draws must lay out with elkjs (the page's own graph builder, in Node):
// a chart that cannot be laid out leaves the page without its diagrams.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import ELKModule from 'elkjs/lib/elk.bundled.js';
import { allMachineDefinitions } from '../../runtime/inspect/machines.ts';
import { elkGraph } from '../../runtime/inspect/page/charts.js';

it('every machine definition lays out with elkjs', async () => {
  // elkjs is CommonJS: its constructor is the default export at run time
  const ELK = ELKModule as unknown as new () => { layout(graph: unknown): Promise<{ children?: unknown[]; edges?: unknown[] }> };
  const elk = new ELK();
  const defs = allMachineDefinitions();
  assert.ok(defs.length >= 4, `bootstrap, raft role, membership and join (got ${defs.map((d) => d.id)})`);
  for (const def of defs) {
    const { graph } = elkGraph(def);
    const laid = await elk.layout(graph);
    assert.equal(laid.children?.length, graph.children.length, `${def.id}: every top-level state is placed`);
    assert.ok((laid.edges?.length ?? 0) > 0, `${def.id}: transitions are drawn`);
  }
});
