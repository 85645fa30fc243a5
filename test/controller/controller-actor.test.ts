// A host statechart invokes a controller as a child actor: it hears the controller's events,
// commands it with sendTo, and stopping the invoking state stops the controller (its store closed).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { assign, createActor, sendTo, setup, waitFor } from 'xstate';
import { type ControllerActorEvent, controllerActor, createInProcessBus } from '../../runtime/index.ts';
import { openStore } from '../../runtime/store/index.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-actor-');
after(() => tmp.cleanup());

describe('controllerActor', () => {
  it('is invoked by a host machine, reports events, answers commands, and stops with its state', async () => {
    const dir = tmp.make();
    const bus = createInProcessBus();
    const host = setup({
      types: {
        context: {} as { clusterId: string | null; put: unknown; phases: string[]; leader: string | null; error: string | null },
        events: {} as ControllerActorEvent | { type: 'STOP' },
      },
      actors: { controller: controllerActor },
    }).createMachine({
      id: 'host',
      context: { clusterId: null, put: null, phases: [], leader: null, error: null },
      initial: 'running',
      states: {
        running: {
          invoke: { id: 'ctrl', src: 'controller', input: { name: 'h1', dataDir: dir, transport: { bus }, raft: { heartbeatMs: 10, electionTimeoutMs: 80 } } },
          on: {
            'conclave.phaseChanged': { actions: assign({ phases: ({ context, event }) => [...context.phases, event.phase] }) },
            'conclave.leaderChanged': { actions: assign({ leader: ({ event }) => event.leader }) },
            'conclave.error': { target: 'failed', actions: assign({ error: ({ event }) => `${event.code}: ${event.message}` }) },
            STOP: { target: 'stopped' },
          },
          initial: 'starting',
          states: {
            starting: {
              on: { 'conclave.started': { target: 'initializing', actions: sendTo('ctrl', { type: 'conclave.init', id: 'init' }) } },
            },
            initializing: {
              on: { 'conclave.result': { target: 'electing', actions: assign({ clusterId: ({ event }) => event.result as string }) } },
            },
            // a fresh one-member cluster elects its leader a moment after init: write once it has
            electing: {
              always: { guard: ({ context }) => context.leader !== null, target: 'writing', actions: sendTo('ctrl', { type: 'conclave.propose', id: 'put', command: { op: 'put', key: 'k', value: 42 } }) },
            },
            writing: {
              on: { 'conclave.result': { target: 'ready', actions: assign({ put: ({ event }) => event.result }) } },
            },
            ready: {},
          },
        },
        stopped: {},
        failed: {},
      },
    });
    const actor = createActor(host);
    actor.start();
    const ready = await waitFor(actor, (s) => s.matches({ running: 'ready' }) || s.matches('failed'), { timeout: 15_000 });
    assert.ok(ready.matches({ running: 'ready' }), `host reached ready (${JSON.stringify(ready.value)}: ${ready.context.error})`);
    assert.match(ready.context.clusterId ?? '', /^[0-9a-f-]{36}$/);
    assert.deepEqual(ready.context.put, { op: 'put', key: 'k', previous: null });
    assert.ok(ready.context.phases.includes('member'), `phases seen: ${ready.context.phases}`);
    await waitFor(actor, (s) => s.context.leader === 'h1', { timeout: 5000 });

    // leaving the invoking state stops the controller: the data dir is free again, with the data in it
    actor.send({ type: 'STOP' });
    let reopened: Awaited<ReturnType<typeof openStore>> | null = null;
    const deadline = Date.now() + 10_000;
    while (!reopened) {
      try {
        reopened = await openStore({ dataDir: dir, name: 'h1' });
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.equal(reopened.identity().clusterId, ready.context.clusterId);
    assert.equal(reopened.stateGet('k'), 42);
    await reopened.close();
    actor.stop();
    await bus.close();
  });
});
