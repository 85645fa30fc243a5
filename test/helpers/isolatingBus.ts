// Test helper: an in-process bus whose connections can be cut off, one name at a time. An isolated
// connection stays subscribed (nothing answers "no responders" for it), but nothing it publishes
// arrives and nothing published to it is delivered: a paused process or a one-node partition.
import { type Bus, type BusMessage, createInProcessBus, type InProcessBus, RequestTimeoutError } from '../../runtime/transport/index.ts';

export interface IsolatingBus extends InProcessBus {
  isolate(name: string): void;
  heal(name: string): void;
}

export function createIsolatingBus(): IsolatingBus {
  const hub = createInProcessBus();
  const isolated = new Set<string>();
  const cutOff = (name: string | undefined): boolean => name !== undefined && isolated.has(name);
  return {
    kind: 'in-process',
    get maxPayload() {
      return hub.maxPayload;
    },
    get subscriptionCount() {
      return hub.subscriptionCount;
    },
    close: () => hub.close(),
    isolate: (name) => void isolated.add(name),
    heal: (name) => void isolated.delete(name),
    connect(name, opts) {
      const bus = hub.connect(name, opts);
      const wrapped: Bus = {
        kind: bus.kind,
        get closed() {
          return bus.closed;
        },
        get maxPayload() {
          return bus.maxPayload;
        },
        publish(subject, data) {
          if (!cutOff(name)) bus.publish(subject, data);
        },
        subscribe(subject, handler, subOpts) {
          return bus.subscribe(subject, (msg: BusMessage) => (cutOff(name) ? undefined : handler(msg)), subOpts);
        },
        async request(subject, data, reqOpts) {
          if (!cutOff(name)) return bus.request(subject, data, reqOpts);
          await new Promise((r) => setTimeout(r, reqOpts.timeoutMs));
          throw new RequestTimeoutError(subject, reqOpts.timeoutMs);
        },
        state: () => ({ ...bus.state(), connected: bus.state().connected && !cutOff(name) }),
        flush: () => bus.flush(),
        close: () => bus.close(),
      };
      return wrapped;
    },
  };
}
