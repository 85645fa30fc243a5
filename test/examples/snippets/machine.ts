import { type MachineApplyResult, replicatedMachine, startController } from 'conclave';
import { assign, setup } from 'xstate';

// a feature rollout: off → canary (a percentage) → on; every node holds the same state
const rollout = setup({
  types: { context: {} as { percent: number }, events: {} as { type: 'canary'; percent: number } | { type: 'promote' } | { type: 'rollback' } },
  actions: {
    setPercent: assign({ percent: ({ event }) => (event.type === 'canary' ? event.percent : 0) }),
    all: assign({ percent: 100 }),
    none: assign({ percent: 0 }),
  },
}).createMachine({
  id: 'rollout',
  context: { percent: 0 },
  initial: 'off',
  states: {
    off: { on: { canary: { target: 'canary', actions: 'setPercent' } } },
    canary: { on: { canary: { actions: 'setPercent' }, promote: { target: 'on', actions: 'all' }, rollback: { target: 'off', actions: 'none' } } },
    on: { on: { rollback: { target: 'off', actions: 'none' } } },
  },
});

export async function rolloutExample(dataDir: string) {
  const ctrl = await startController({ name: 'flags1', dataDir, state: replicatedMachine(rollout) });
  await ctrl.init();
  await ctrl.waitForLeader();
  await ctrl.propose({ type: 'canary', percent: 10 }); // each command is an event to the machine
  const promoted = (await ctrl.propose({ type: 'promote' })) as MachineApplyResult; // { ok: true, handled: true, value: 'on', context: { percent: 100 } }
  const ignored = (await ctrl.propose({ type: 'promote' })) as MachineApplyResult; // { ok: true, handled: false, … }: not an event 'on' takes
  const state = await ctrl.read(null); // { value: 'on', context: { percent: 100 } }
  await ctrl.stop();
  return { promoted, ignored, state };
}
