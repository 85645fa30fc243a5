// Never fork: a blank node configured with initFrom AND initialMembers does not initialize when one
// of those members already is (or is becoming) a member of a cluster; it waits to be added instead.
import { AdminServer } from '../../runtime/admin.ts';
import { ConclaveError, conclaveError } from '../../runtime/errors.ts';
import { silentLogger } from '../../runtime/log/logger.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import type { AutoInitState } from '../../runtime/wire/adminProtocol.ts';
import type { Sender } from '../../runtime/wire/codec.ts';
import type { Clock } from '../ports.ts';
import { sleepOn } from './context.ts';
import { whois } from './whois.ts';

export interface InitProbe {
  /** why this node must not initialize (someone else is or will be the cluster), or null */
  wait: string | null;
  close(): void;
}

/** how long a node with initFrom + initialMembers listens before deciding, so peers started together see each other */
const INIT_PROBE_SETTLE_MS = 1500;

/**
 * Decide whether a blank node with initFrom and initialMembers may initialize. It first answers
 * `whois` itself (state "probing"), waits for peers started at the same moment to do the same, then
 * asks every initial member: one that is a member, or is initializing, means wait; among nodes still
 * probing the smallest name initializes and the others wait to be added. The decision is then
 * announced ("initializing" / "waiting") until the controller answers for itself.
 */
export async function probeBeforeInitFrom(bus: Bus, prefix: string, name: string, others: string[], sender: Sender & { nodeId: string }, clock: Clock): Promise<InitProbe> {
  let state: AutoInitState = 'probing';
  const responder = new AdminServer(
    bus,
    `${prefix}.node.${name}.admin`,
    {
      whois: async () => ({ ...sender, autoInit: state }),
      status: async () => ({
        name,
        nodeId: sender.nodeId,
        clusterId: null,
        phase: 'uninitialized',
        role: 'none',
        term: 0,
        leader: null,
        commitIndex: 0,
        appliedIndex: 0,
        members: [],
        bus: bus.state(),
      }),
      'join.offer': async () => {
        throw conclaveError('BUSY', `${name} is starting (deciding whether to initialize from initFrom); retry shortly`);
      },
    },
    silentLogger(),
  );
  await responder.start();
  const close = () => void responder.stop();
  try {
    await sleepOn(clock, INIT_PROBE_SETTLE_MS);
    // a node that answers with an error (busy, stopping) is not one we can count on
    const answerOf = (other: string) => whois(bus, prefix, other, sender).catch((err: unknown) => (err instanceof ConclaveError ? null : Promise.reject(err)));
    const answers = await Promise.all(others.map(async (other) => ({ other, who: await answerOf(other) })));
    let wait: string | null = null;
    for (const { other, who } of answers) {
      if (!who) continue;
      if (who.clusterId) wait ??= `initial member ${other} already belongs to cluster ${who.clusterId}`;
      else if (who.autoInit === 'initializing') wait ??= `initial member ${other} is initializing a cluster from its initFrom`;
      else if (who.autoInit === 'probing' && other < name) wait ??= `initial member ${other} is starting with initFrom too, and the smallest name initializes`;
    }
    state = wait ? 'waiting' : 'initializing';
    return { wait, close };
  } catch (err) {
    close();
    throw err;
  }
}
