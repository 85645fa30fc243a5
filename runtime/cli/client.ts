// The CLI's side of the admin protocol: one request to one node, errors mapped to exit codes.
import { ConclaveError } from '../errors.ts';
import { type Bus, type BusMessage, NoRespondersError, RequestTimeoutError } from '../transport/types.ts';
import { decodeReply, encode } from '../wire/codec.ts';

export const CLI_SENDER = { name: 'cli', nodeId: null, clusterId: null } as const;

export async function adminRequest(bus: Bus, prefix: string, node: string, type: string, body: unknown, timeoutMs: number): Promise<unknown> {
  const subject = `${prefix}.node.${node}.admin`;
  let reply: BusMessage;
  try {
    reply = await bus.request(subject, encode(CLI_SENDER, type, body), { timeoutMs });
  } catch (err) {
    if (err instanceof NoRespondersError) {
      throw new ConclaveError('NO_RESPONDERS', `node ${node} is not reachable: nothing answers on ${subject}. Is \`conclave run --name ${node}\` running with the same --nats and --prefix?`);
    }
    if (err instanceof RequestTimeoutError) {
      throw new ConclaveError('TIMEOUT', `node ${node} did not answer ${type} within ${timeoutMs} ms; retry with a larger --timeout or check the node's log`);
    }
    throw err;
  }
  const decoded = decodeReply(reply.data);
  if (!decoded.ok) throw new ConclaveError(decoded.error.code, decoded.error.message, decoded.error.details);
  return decoded.body;
}
