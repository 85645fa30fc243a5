// Liveness: the member pings its peers every second, and calls a peer reachable when it heard
// from it recently (any peer message counts).
import type { Membership } from '../machines/raft/types.ts';
import type { RateLimitedLog } from '../runtime/log/rateLimit.ts';
import { encode, type Sender } from '../runtime/wire/codec.ts';
import type { PingBody } from './clusterVersion.ts';
import { PING_EVERY_MS } from './peerWire.ts';
import type { Clock, MemberBus, TimerHandle } from './ports.ts';

export interface LivenessHands {
  readonly prefix: string;
  readonly bus: MemberBus;
  readonly clock: Clock;
  readonly dropLog: RateLimitedLog;
  readonly electionTimeoutMs: number;
  readonly nodeId: string;
  sender(): Sender;
  membership(): Membership;
  /** what a ping says (clusterVersion.ts): the versions this member speaks, its key while uncommitted */
  pingBody(): PingBody;
}

export class Liveness {
  private readonly lastHeard = new Map<string, number>();
  private timer: TimerHandle | null = null;

  constructor(private readonly hands: LivenessHands) {}

  start(): void {
    this.timer = this.hands.clock.setInterval(() => this.pingPeers(), PING_EVERY_MS);
  }

  stop(): void {
    if (this.timer) this.hands.clock.clearInterval(this.timer);
  }

  heard(nodeId: string): void {
    this.lastHeard.set(nodeId, this.hands.clock.now());
  }

  /** a closure over one instant, for every member of a status */
  reachable(): (nodeId: string) => boolean {
    const now = this.hands.clock.now();
    const window = Math.max(3 * PING_EVERY_MS, 2 * this.hands.electionTimeoutMs);
    return (nodeId) => nodeId === this.hands.nodeId || now - (this.lastHeard.get(nodeId) ?? 0) < window;
  }

  private pingPeers(): void {
    const sender = this.hands.sender();
    const body = this.hands.pingBody();
    for (const m of this.hands.membership().members) {
      if (m.nodeId === this.hands.nodeId) continue;
      try {
        this.hands.bus.publish(`${this.hands.prefix}.node.${m.name}.peer`, encode(sender, 'ping', body));
      } catch (err) {
        this.hands.dropLog.warn(`ping:${m.name}`, { err, to: m.name }, 'could not ping peer');
      }
    }
  }
}
