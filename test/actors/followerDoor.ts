// A follower's door (actors/inbound.ts) for unit tests: no bus, a fixed cluster and generation; what
// it gives the raft core and what it publishes are recorded (published messages decoded).
import assert from 'node:assert/strict';
import { Inbound } from '../../actors/inbound.ts';
import type { Liveness } from '../../actors/liveness.ts';
import { type Clock, realClock } from '../../actors/ports.ts';
import { peerBodies } from '../../actors/peerWire.ts';
import type { RaftMessage } from '../../machines/raft/messages.ts';
import type { Membership } from '../../machines/raft/types.ts';
import type { Logger } from '../../runtime/log/logger.ts';
import { RateLimitedLog } from '../../runtime/log/rateLimit.ts';
import { decode } from '../../runtime/wire/codec.ts';
import type { PairwiseKeys } from '../../runtime/wire/pairwiseKeys.ts';

export interface Published {
  subject: string;
  type: string;
  body: Record<string, unknown>;
}

export function followerDoor(opts: {
  self: { name: string; nodeId: string };
  cluster: string;
  membership: () => Membership;
  pairwise: PairwiseKeys | null;
  log: Logger;
  clock?: Clock;
  /** which published messages to record (default: all) */
  record?: (type: string) => boolean;
}): { inbound: Inbound; core: RaftMessage[][]; published: Published[] } {
  const { self, cluster } = opts;
  const core: RaftMessage[][] = [];
  const published: Published[] = [];
  const publish = (subject: string, data: Uint8Array) => {
    const d = decode(data, peerBodies);
    assert.ok(d.ok, 'what the door publishes decodes');
    if (opts.record?.(d.envelope.type) === false) return;
    published.push({ subject, type: d.envelope.type, body: d.body as Record<string, unknown> });
  };
  const inbound = new Inbound({
    name: self.name,
    prefix: 'p',
    bus: { publish, subscribe: () => ({ unsubscribe() {} }), request: () => Promise.reject(new Error('no bus')), flush: async () => {} } as never,
    clock: opts.clock ?? realClock,
    log: opts.log,
    dropLog: new RateLimitedLog(opts.log),
    liveness: { heard() {} } as unknown as Liveness,
    nodeId: self.nodeId,
    clusterId: () => cluster,
    generation: () => 1,
    sender: () => ({ name: self.name, nodeId: self.nodeId, clusterId: cluster, generation: 1 }),
    role: () => 'follower',
    membership: opts.membership,
    pairwise: opts.pairwise,
    stopped: () => false,
    halt: (err) => assert.fail(String(err)),
    toCore: (messages) => core.push(messages),
    onSnapshotChunk: () => assert.fail('no snapshot chunks here'),
    onSnapshotAck: () => {},
  });
  return { inbound, core, published };
}
