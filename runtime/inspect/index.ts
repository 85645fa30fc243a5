// The inspector: publisher (per controller), collector (bus side), HTTP server (page + API + SSE),
// recorder and replay, and the statecharts as data. See docs/inspector.md.
import type { Logger } from '../log/logger.ts';
import type { Bus } from '../transport/types.ts';
import type { InspectorControls } from './controls.ts';
import { Inspector } from './inspector.ts';
import { attachInspectionPublisher, type InspectableController } from './publisher.ts';
import { startInspectorServer } from './server.ts';

export { Inspector, type Frame, type NodeStatus, type InspectorOptions, type RecordingHeader } from './inspector.ts';
export { attachInspectionPublisher, type InspectableController, type InspectionPublisher } from './publisher.ts';
export { checkListen, startInspectorServer, parseListen, type InspectorServer } from './server.ts';
export { readRecording, type Recording } from './replay.ts';
export { allMachineDefinitions, machineDefinition, MACHINES, type MachineDef } from './machines.ts';
export { toDot, toMermaid } from './diagrams.ts';
export type { Refusal, InspectEvent } from './protocol.ts';

export type { InspectorControls } from './controls.ts';

export interface ControllerInspectorOptions {
  /** HOST:PORT the inspector serves on */
  listen: string;
  /** record the inspection stream to this file */
  record?: string;
  logger?: Logger;
  /** serve on an address other than loopback (refused without it) */
  public?: boolean;
}

/**
 * `--inspect HOST:PORT` for `run` and `demo`: make sure the controller publishes its inspection
 * stream and serve the inspector for every node on the controller's bus.
 */
export async function startInspectorForController(controller: InspectableController, opts: ControllerInspectorOptions): Promise<{ url: string; stop(): Promise<void> }> {
  attachInspectionPublisher(controller, { logger: opts.logger });
  return startInspector({ ...opts, bus: controller.bus, prefix: controller.prefix });
}

/** The inspector on a bus of its own (the demo's: it outlives any one controller), optionally with controls. */
export async function startInspector(opts: ControllerInspectorOptions & { bus: Bus; prefix: string; controls?: InspectorControls }): Promise<{ url: string; stop(): Promise<void> }> {
  const controls = opts.controls;
  const inspector = new Inspector({ bus: opts.bus, prefix: opts.prefix, logger: opts.logger, record: opts.record, ...(controls ? { faults: () => controls.nodes() } : {}) });
  await inspector.start();
  let server: Awaited<ReturnType<typeof startInspectorServer>>;
  try {
    server = await startInspectorServer({ listen: opts.listen, inspector, logger: opts.logger, public: opts.public, ...(opts.controls ? { controls: opts.controls } : {}) });
  } catch (err) {
    await inspector.stop();
    throw err;
  }
  return {
    url: server.url,
    stop: async () => {
      await server.close();
      await inspector.stop();
    },
  };
}
