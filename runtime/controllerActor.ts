// A controller as an XState actor logic, so a host statechart can invoke one as a child:
//
//   invoke: { src: controllerActor, input: { name: 'ctrl1', dataDir: '…' } }
//
// The child starts the controller, reports what happens to it as events to its parent, and takes
// commands from the parent (`sendTo`). Stopping the child (leaving the invoking state, stopping the
// parent) stops the controller gracefully.
import { fromCallback } from 'xstate';
import type { Phase } from '../machines/bootstrap/machine.ts';
import { type Controller, type ControllerOptions, type ControllerStatus, startController } from './controller.ts';
import { codeOf } from './errors.ts';

/** what the child sends to its parent */
export type ControllerActorEvent =
  | { type: 'conclave.started'; status: ControllerStatus }
  | { type: 'conclave.phaseChanged'; phase: Phase }
  | { type: 'conclave.leaderChanged'; leader: string | null; term: number }
  | { type: 'conclave.membershipChanged'; members: Array<{ name: string; nodeId: string; voter: boolean }> }
  /** the answer to a command the parent sent, matched by `id` */
  | { type: 'conclave.result'; id: string; result: unknown }
  /** a failure: of the start (no `id`) or of a command (its `id`) */
  | { type: 'conclave.error'; id?: string; code: string; message: string };

/** what the parent may send to the child; `id` is echoed in the answer */
export type ControllerActorCommand =
  | { type: 'conclave.init'; id: string }
  | { type: 'conclave.propose'; id: string; command: unknown }
  | { type: 'conclave.read'; id: string; query: unknown; stale?: boolean }
  | { type: 'conclave.add'; id: string; name: string }
  | { type: 'conclave.remove'; id: string; name: string }
  | { type: 'conclave.status'; id: string };

export const controllerActor = fromCallback<ControllerActorCommand, ControllerOptions, ControllerActorEvent>(({ input, sendBack, receive }) => {
  let controller: Controller | null = null;
  let stopped = false;
  const unsubscribe: Array<() => void> = [];
  const queued: ControllerActorCommand[] = [];

  const fail = (err: unknown, id?: string) =>
    sendBack({ type: 'conclave.error', ...(id === undefined ? {} : { id }), code: codeOf(err) ?? 'INTERNAL', message: err instanceof Error ? err.message : String(err) });

  const run = (c: Controller, cmd: ControllerActorCommand) => {
    const work = (): Promise<unknown> => {
      switch (cmd.type) {
        case 'conclave.init':
          return c.init();
        case 'conclave.propose':
          return c.propose(cmd.command);
        case 'conclave.read':
          return c.read(cmd.query, { stale: cmd.stale });
        case 'conclave.add':
          return c.cluster.add(cmd.name);
        case 'conclave.remove':
          return c.cluster.remove(cmd.name);
        case 'conclave.status':
          return Promise.resolve(c.status());
      }
    };
    work().then(
      (result) => {
        if (!stopped) sendBack({ type: 'conclave.result', id: cmd.id, result });
      },
      (err: unknown) => {
        if (!stopped) fail(err, cmd.id);
      },
    );
  };

  startController(input).then(
    (c) => {
      if (stopped) {
        c.stop().catch((err: unknown) => c.logFor('actor').error({ err }, 'stopping the invoked controller failed'));
        return;
      }
      controller = c;
      unsubscribe.push(
        c.on('phaseChanged', (e) => sendBack({ type: 'conclave.phaseChanged', phase: e.phase })),
        c.on('leaderChanged', (e) => sendBack({ type: 'conclave.leaderChanged', leader: e.leader, term: e.term })),
        c.on('membershipChanged', (e) => sendBack({ type: 'conclave.membershipChanged', members: e.members })),
      );
      sendBack({ type: 'conclave.started', status: c.status() });
      for (const cmd of queued.splice(0)) run(c, cmd);
    },
    (err: unknown) => {
      if (!stopped) fail(err);
    },
  );

  receive((cmd) => {
    if (stopped) return;
    if (controller) run(controller, cmd);
    else queued.push(cmd); // sent before the controller finished starting: run once it has
  });

  return () => {
    stopped = true;
    for (const off of unsubscribe) off();
    const c = controller;
    controller = null;
    c?.stop().catch((err: unknown) => c.logFor('actor').error({ err }, 'stopping the invoked controller failed'));
  };
});
