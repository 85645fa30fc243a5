// Three controllers in one process on the in-process bus: initialize one, add the other two,
// write through raft, read from each node, stop cleanly.
//   npm run example:in-process
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Controller, createInProcessBus, startController } from 'conclave';

const dataRoot = mkdtempSync(join(tmpdir(), 'conclave-example-in-process-'));
const bus = createInProcessBus();
const names = ['ctrl1', 'ctrl2', 'ctrl3'];
const controllers: Controller[] = [];

try {
  for (const name of names) {
    controllers.push(await startController({ name, dataDir: join(dataRoot, name), transport: { bus } }));
  }
  const [ctrl1, ctrl2, ctrl3] = controllers as [Controller, Controller, Controller];
  console.log(`started ${names.join(', ')}: phase ${ctrl1.status().phase}, no cluster id yet`);

  const clusterId = await ctrl1.init();
  await ctrl1.waitForLeader();
  console.log(`ctrl1 initialized cluster ${clusterId}`);

  for (const name of ['ctrl2', 'ctrl3']) {
    const added = await ctrl1.cluster.add(name);
    console.log(`added ${added.name} (${added.outcome})`);
  }
  const list = await ctrl1.cluster.list();
  console.log(`members: ${list.members.map((m) => `${m.name}${m.leader ? ' (leader)' : ''}${m.voter ? '' : ' (learner)'}`).join(', ')}`);

  // writes from any member are forwarded to the leader; each resolves once applied
  await ctrl2.propose({ op: 'put', key: 'color', value: 'blue' });
  await ctrl3.propose({ op: 'put', key: 'size', value: 42 });
  await ctrl1.propose({ op: 'cas', key: 'color', expected: 'blue', value: 'green' });
  console.log('wrote color=blue, size=42, then color: blue → green (compare-and-swap)');

  // a stale read answers from the node's own copy: let every node apply what the leader committed
  const commitIndex = ctrl1.status().commitIndex;
  for (const c of controllers) {
    while (c.status().appliedIndex < commitIndex) await new Promise((r) => setTimeout(r, 10));
  }
  for (const c of controllers) {
    const color = (await c.read({ op: 'get', key: 'color' })) as { value: unknown };
    const size = (await c.read({ op: 'get', key: 'size' }, { stale: true })) as { value: unknown };
    console.log(`read on ${c.name}: color=${color.value} (linearizable), size=${size.value} (local)`);
  }
  console.log(`same cluster everywhere: ${controllers.every((c) => c.status().clusterId === clusterId)}`);
} finally {
  for (const c of controllers.reverse()) await c.stop();
  await bus.close();
  rmSync(dataRoot, { recursive: true, force: true });
}
console.log('stopped cleanly');
