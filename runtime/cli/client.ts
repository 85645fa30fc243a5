// The CLI's side of the admin protocol: one request to one node, unreachability explained in the
// CLI's terms (exit 3).
import { InvalidArgumentError } from 'commander';
import { validNodeName } from '../../machines/identity/index.ts';
import { conclaveError } from '../errors.ts';
import { type Bus, NoRespondersError, RequestTimeoutError } from '../transport/types.ts';
import type { AdminSigner } from '../wire/adminAuth.ts';
import type { AdminOp, AdminReply, AdminRequest } from '../wire/adminProtocol.ts';

export const CLI_SENDER = { name: 'cli', nodeId: null, clusterId: null } as const;

/**
 * The encoder (no zod), loaded on the first request, not for `--help`. Imported once: a dynamic
 * import per request goes through the module loader every time (through tsx's hooks when run from
 * source), which made every client of this function — the bench's included — about 3× slower at
 * 64 requests in flight.
 */
let adminClient: Promise<typeof import('../adminClient.ts')> | undefined;

/** `operator`: the key (--operator-key) that signs the request: what changes the cluster needs an operator key; reads, one only when the members say `reads: 'signed'` */
export async function adminRequest<O extends AdminOp>(
  bus: Bus,
  prefix: string,
  node: string,
  type: O,
  body: AdminRequest<O>,
  timeoutMs: number,
  operator?: AdminSigner,
): Promise<AdminReply<O>> {
  adminClient ??= import('../adminClient.ts');
  const { adminCall } = await adminClient;
  try {
    return await adminCall(bus, prefix, node, CLI_SENDER, type, body, timeoutMs, operator);
  } catch (err) {
    if (err instanceof NoRespondersError) {
      throw conclaveError('NO_RESPONDERS', `node ${node} is not reachable: nothing answers on ${prefix}.node.${node}.admin. Is \`conclave run --name ${node}\` running with the same --nats and --prefix?`);
    }
    if (err instanceof RequestTimeoutError) {
      throw conclaveError('TIMEOUT', `node ${node} did not answer ${type} within ${timeoutMs} ms; retry with a larger --timeout or check the node's log`);
    }
    throw err;
  }
}

/**
 * commander's parser for `--node`, `--via` and node-name arguments: a name becomes a subject token
 * (`<prefix>.node.<name>.admin`), so `*`, `>` or `a.b` must never reach the bus (exit 2).
 */
export function nodeNameArg(value: string): string {
  if (!validNodeName(value)) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a node name: a node name must match ^[a-z0-9][a-z0-9_-]{0,62}$`);
  return value;
}
