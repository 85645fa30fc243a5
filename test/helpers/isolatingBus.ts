// Test helper: an in-process bus whose connections can be cut off, one name at a time. An isolated
// connection stays subscribed (nothing answers "no responders" for it), but nothing it publishes
// arrives and nothing published to it is delivered: a paused process or a one-node partition.
// `cut(a, b)` drops only what a and b address to each other (`<prefix>.node.<name>.*`): a partition.
import { type Bus, type BusMessage, createInProcessBus, type InProcessBus, RequestTimeoutError } from '../../runtime/transport/index.ts';

export interface IsolatingBus extends InProcessBus {
  isolate(name: string): void;
  heal(name: string): void;
  /** a and b no longer reach each other's node subjects (both directions) */
  cut(a: string, b: string): void;
  /** undo every isolate and cut */
  healAll(): void;
}

const NODE_SUBJECT = /\.node\.([^.]+)\./;

export function createIsolatingBus(): IsolatingBus {
  const hub = createInProcessBus();
  const isolated = new Set<string>();
  const cuts = new Set<string>();
  const cutOff = (name: string | undefined): boolean => name !== undefined && isolated.has(name);
  /** what `name` sends to `subject` is dropped */
  const blocked = (name: string | undefined, subject: string): boolean => {
    if (cutOff(name)) return true;
    const to = NODE_SUBJECT.exec(subject)?.[1];
    return name !== undefined && to !== undefined && cuts.has(`${name} ${to}`);
  };
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
    cut(a, b) {
      cuts.add(`${a} ${b}`);
      cuts.add(`${b} ${a}`);
    },
    healAll() {
      isolated.clear();
      cuts.clear();
    },
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
        get deferredWrites() {
          return bus.deferredWrites;
        },
        publish(subject, data) {
          if (!blocked(name, subject)) bus.publish(subject, data);
        },
        subscribe(subject, handler, subOpts) {
          return bus.subscribe(subject, (msg: BusMessage) => (cutOff(name) ? undefined : handler(msg)), subOpts);
        },
        async request(subject, data, reqOpts) {
          if (!blocked(name, subject)) return bus.request(subject, data, reqOpts);
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
