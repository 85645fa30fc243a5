// Test helper: controllers in this process on one fresh in-process bus, with real LMDB stores in a
// temporary folder; whatever a test leaves running is stopped in `after`.
import { after, before } from 'node:test';
import { type Controller, type ControllerOptions, startController } from '../../runtime/controller.ts';
import type { Refusal } from '../../runtime/inspect/protocol.ts';
import { createInProcessBus, type InProcessBus, type InProcessBusOptions } from '../../runtime/transport/index.ts';
import { tmpDirs } from './tmp.ts';

/** fast raft timing for in-process tests */
export const FAST = { heartbeatMs: 10, electionTimeoutMs: 80 };

export interface InProcessCluster {
  readonly bus: InProcessBus;
  /** the folder holding every controller's data dir (`<root>/<name>`) */
  readonly root: string;
  start(name: string, extra?: Partial<ControllerOptions>): Promise<Controller>;
  stop(c: Controller): Promise<void>;
  /** the refusals `c` reports from now on */
  refusals(c: Controller): Refusal[];
}

/** Call inside a `describe`: registers the before/after hooks of that suite. */
export function inProcessCluster(tmpPrefix: string, busOptions: InProcessBusOptions = {}): InProcessCluster {
  const tmp = tmpDirs(tmpPrefix);
  const started = new Set<Controller>();
  let bus: InProcessBus | undefined;
  let root = '';
  before(() => {
    bus = createInProcessBus(busOptions);
    root = tmp.make();
  });
  after(async () => {
    for (const c of started) await c.stop();
    await bus?.close();
    tmp.cleanup();
  });
  const theBus = (): InProcessBus => {
    if (!bus) throw new Error('inProcessCluster: the bus exists once the suite has started');
    return bus;
  };
  // methods close over the suite's state (no `this`), so they can be destructured
  return {
    get bus() {
      return theBus();
    },
    get root() {
      return root;
    },
    async start(name, extra = {}) {
      const c = await startController({ name, dataDir: `${root}/${name}`, transport: { bus: theBus() }, raft: FAST, ...extra });
      started.add(c);
      return c;
    },
    async stop(c) {
      await c.stop();
      started.delete(c);
    },
    refusals(c) {
      const seen: Refusal[] = [];
      c.onRefusal((r) => seen.push(r));
      return seen;
    },
  };
}
