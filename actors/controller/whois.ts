// `whois`: who answers `<prefix>.node.<name>.admin`. Asked before a controller starts (a name is
// answered by one node only) and by a blank node with initFrom deciding whether to initialize.
import { adminCall, isUnreachable } from '../../runtime/admin.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import type { AutoInitState, WhoisReply } from '../../runtime/wire/adminProtocol.ts';
import type { Sender } from '../../runtime/wire/codec.ts';
import type { ControllerContext } from './context.ts';

export interface WhoisAnswer {
  nodeId: string | null;
  clusterId: string | null;
  /** a blank node deciding whether to initialize from initFrom says where it stands */
  autoInit?: AutoInitState;
}

const WHOIS_TIMEOUT_MS = 1000;

/** Who answers for `name` on this prefix (null: nobody does). An error the node replies with is thrown. */
export async function whois(bus: Bus, prefix: string, name: string, sender: Sender): Promise<WhoisAnswer | null> {
  let body: unknown;
  try {
    body = await adminCall(bus, prefix, name, sender, 'whois', {}, WHOIS_TIMEOUT_MS);
  } catch (err) {
    if (isUnreachable(err)) return null;
    throw err;
  }
  // read field by field: the answer comes from whoever holds the name, maybe an older node
  if (!body || typeof body !== 'object') return null;
  const b = body as Record<string, unknown>;
  return {
    nodeId: typeof b.nodeId === 'string' ? b.nodeId : null,
    clusterId: typeof b.clusterId === 'string' ? b.clusterId : null,
    autoInit: b.autoInit === 'probing' || b.autoInit === 'initializing' || b.autoInit === 'waiting' ? b.autoInit : undefined,
  };
}

/** this node's answer: a blank node about to initialize from initFrom says so, and peers racing to do the same wait */
export function whoisAnswer(ctx: ControllerContext): WhoisReply {
  const context = ctx.actor().getSnapshot().context;
  const phase = ctx.phase();
  const initializing = context.clusterId === null && context.initFrom !== null && (phase === 'bootstrapping' || phase === 'uninitialized') && !context.error;
  const rotations = ctx.store.memberKey?.().rotations ?? [];
  const { version: _version, ...sender } = ctx.sender();
  const answer: WhoisReply = rotations.length > 0 ? { ...sender, keyRotations: [...rotations] } : sender;
  return initializing ? { ...answer, autoInit: 'initializing' } : answer;
}
