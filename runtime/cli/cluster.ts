// `conclave cluster add|remove|list|transfer-leadership`: membership operations, sent to any member
// (`--via`) and forwarded by it to the leader. The CLI waits longer than the cluster's own waits,
// so an add that is still progressing is never reported as failed by the CLI first.
import type { Command } from 'commander';
import type { Bus } from '../transport/types.ts';
import { adminRequest, nodeNameArg } from './client.ts';
import { formatClusterList } from './format.ts';

export interface ClusterCliHelpers<F> {
  addCommon(cmd: Command, defaultTimeoutMs: number): Command;
  withBus<T>(flags: F, work: (bus: Bus, prefix: string, timeoutMs: number) => Promise<T>): Promise<T>;
  print(flags: F, value: unknown, human: () => string): void;
}

/** default CLI timeouts (ms): longer than the leader's deadline for the same operation */
export const CLUSTER_TIMEOUTS = { add: 30_000, remove: 15_000, list: 5000, transfer: 10_000 } as const;

type Flags = { via: string; json?: boolean; timeout?: string; nats?: string; prefix?: string };

export function addClusterCommands<F extends Flags>(program: Command, h: ClusterCliHelpers<F>): void {
  const cluster = program.command('cluster').description('membership: add, remove, list members, transfer leadership');

  h.addCommon(
    cluster
      .command('add')
      .description('add node N: it enters as a learner, catches up, then is promoted to voter')
      .argument('<name>', 'the node to add (it must be running)', nodeNameArg)
      .requiredOption('--via <node>', 'any member; the request is forwarded to the leader', nodeNameArg),
    CLUSTER_TIMEOUTS.add,
  ).action(async (name: string, flags: F) => {
    // the leader answers before our timeout: its deadline is our timeout minus the forwarding hop
    const result = await h.withBus(flags, (bus, prefix, t) => adminRequest(bus, prefix, flags.via, 'cluster.add', { name, timeoutMs: t }, t + 1000));
    h.print(flags, result, () =>
      result.outcome === 'already-member' ? `${result.name} is already a voter (node ${result.nodeId}); nothing changed` : `added ${result.name} (node ${result.nodeId}) as a voter`,
    );
  });

  h.addCommon(
    cluster
      .command('remove')
      .description('remove node N from the cluster (it goes to phase removed and never rejoins by itself)')
      .argument('<name>', 'the member to remove', nodeNameArg)
      .requiredOption('--via <node>', 'any member; the request is forwarded to the leader', nodeNameArg),
    CLUSTER_TIMEOUTS.remove,
  ).action(async (name: string, flags: F) => {
    const result = await h.withBus(flags, (bus, prefix, t) => adminRequest(bus, prefix, flags.via, 'cluster.remove', { name, timeoutMs: t }, t + 1000));
    h.print(flags, result, () => `removed ${result.name} (node ${result.nodeId})`);
  });

  h.addCommon(
    cluster
      .command('list')
      .description("members with name, node id, voter/learner, leader, reachable, match index (the leader's view)")
      .requiredOption('--via <node>', 'any member; the request is forwarded to the leader', nodeNameArg),
    CLUSTER_TIMEOUTS.list,
  ).action(async (flags: F) => {
    const list = await h.withBus(flags, (bus, prefix, t) => adminRequest(bus, prefix, flags.via, 'cluster.list', {}, t));
    h.print(flags, list, () => formatClusterList(list));
  });

  h.addCommon(
    cluster
      .command('transfer-leadership')
      .description('hand leadership to voter N, or to the most up-to-date voter')
      .argument('[name]', 'the voter to hand leadership to', nodeNameArg)
      .requiredOption('--via <node>', 'any member; the request is forwarded to the leader', nodeNameArg),
    CLUSTER_TIMEOUTS.transfer,
  ).action(async (name: string | undefined, flags: F) => {
    const body = name === undefined ? {} : { name };
    const result = await h.withBus(flags, (bus, prefix, t) => adminRequest(bus, prefix, flags.via, 'cluster.transfer', { ...body, timeoutMs: t }, t + 1000));
    h.print(flags, result, () => (result.transferred ? `leadership handed to ${result.leader}` : `${result.leader} is already the leader; nothing changed`));
  });
}
