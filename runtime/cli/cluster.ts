// `conclave cluster add|remove|list|transfer-leadership`: membership operations, sent to any member
// (`--via`) and forwarded by it to the leader. The CLI waits longer than the cluster's own waits,
// so a change that is still progressing is never reported as failed by the CLI first. `cluster add`
// follows the add for as long as the new node makes progress (a large state takes a while to
// stream), showing it on stderr, and gives up only when it stalls or the user's --timeout passes.
import type { Command } from 'commander';
import { ConclaveError, conclaveError } from '../errors.ts';
import type { Bus } from '../transport/types.ts';
import type { AdminSigner } from '../wire/adminAuth.ts';
import type { AddProgress, AddResult } from '../wire/adminProtocol.ts';
import { adminRequest, nodeNameArg } from './client.ts';
import { formatClusterList } from './format.ts';

export interface ClusterCliHelpers<F> {
  addCommon(cmd: Command, defaultTimeoutMs: number): Command;
  withBus<T>(flags: F, work: (bus: Bus, prefix: string, timeoutMs: number, operator: AdminSigner | undefined) => Promise<T>): Promise<T>;
  print(flags: F, value: unknown, human: () => string): void;
}

/** default CLI timeouts (ms): longer than the leader's deadline for the same operation; `add`: how long it may make no progress */
export const CLUSTER_TIMEOUTS = { add: 30_000, remove: 15_000, list: 5000, transfer: 10_000 } as const;
/** `cluster add`: the leader answers each request within this time, with the add's progress if it is still under way */
const ADD_PROGRESS_MS = 1000;
/** a progress line on stderr at most this often while the step stays the same */
const ADD_REPORT_EVERY_MS = 5000;

type Flags = { via: string; json?: boolean; timeout?: string; nats?: string; prefix?: string };

export function addClusterCommands<F extends Flags>(program: Command, h: ClusterCliHelpers<F>): void {
  const cluster = program.command('cluster').description('membership: add, remove, list members, transfer leadership');

  h.addCommon(
    cluster
      .command('add')
      .description(
        'add node N: it enters as a learner, catches up, then is promoted to voter. Waits while N makes progress (shown on stderr); ' +
          `fails when it makes none for ${CLUSTER_TIMEOUTS.add / 1000} s, or when --timeout, if given, passes`,
      )
      .argument('<name>', 'the node to add (it must be running)', nodeNameArg)
      .requiredOption('--via <node>', 'any member; the request is forwarded to the leader', nodeNameArg),
    CLUSTER_TIMEOUTS.add,
  ).action(async (name: string, flags: F, cmd: Command) => {
    // without --timeout: no deadline, only a stall (the default timeout is how long it may make no progress)
    const given = cmd.getOptionValueSource('timeout') !== 'default';
    const result = await h.withBus(flags, (bus, prefix, t, operator) =>
      followAdd({ bus, prefix, via: flags.via, name, timeoutMs: given ? t : null, stallMs: given ? Number.POSITIVE_INFINITY : t, operator }),
    );
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
    const result = await h.withBus(flags, (bus, prefix, t, op) => adminRequest(bus, prefix, flags.via, 'cluster.remove', { name, timeoutMs: t }, t + 1000, op));
    h.print(flags, result, () => `removed ${result.name} (node ${result.nodeId})`);
  });

  h.addCommon(
    cluster
      .command('list')
      .description("members with name, node id, voter/learner, leader, reachable, match index (the leader's view)")
      .requiredOption('--via <node>', 'any member; the request is forwarded to the leader', nodeNameArg),
    CLUSTER_TIMEOUTS.list,
  ).action(async (flags: F) => {
    const list = await h.withBus(flags, (bus, prefix, t, op) => adminRequest(bus, prefix, flags.via, 'cluster.list', {}, t, op));
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
    const result = await h.withBus(flags, (bus, prefix, t, op) => adminRequest(bus, prefix, flags.via, 'cluster.transfer', { ...body, timeoutMs: t }, t + 1000, op));
    h.print(flags, result, () => (result.transferred ? `leadership handed to ${result.leader}` : `${result.leader} is already the leader; nothing changed`));
  });
}

/**
 * `cluster add`: ask the leader (through `via`) to add `name` and follow the add, one request per
 * ADD_PROGRESS_MS, until it ends; fail when it makes no progress for `stallMs` or after `timeoutMs`.
 */
async function followAdd(o: { bus: Bus; prefix: string; via: string; name: string; timeoutMs: number | null; stallMs: number; operator: AdminSigner | undefined }): Promise<AddResult> {
  const startedAt = Date.now();
  let seen = '';
  let progressedAt = startedAt;
  let reported = { step: '', at: 0 };
  for (;;) {
    const body = { name: o.name, progressMs: ADD_PROGRESS_MS, ...(o.timeoutMs === null ? {} : { timeoutMs: o.timeoutMs }) };
    let reply: AddResult | AddProgress;
    try {
      reply = await adminRequest(o.bus, o.prefix, o.via, 'cluster.add', body, ADD_PROGRESS_MS + 10_000, o.operator);
    } catch (err) {
      // leadership moved: the next request reaches the new leader, which takes the add over
      if (!(err instanceof ConclaveError && (err.code === 'NOT_LEADER' || err.code === 'NO_LEADER')) || seen === '') throw err;
      reply = { name: o.name, outcome: 'in-progress', step: 'changing leader', matchIndex: 0, commitIndex: 0, snapshotBytes: 0, elapsedMs: 0 };
    }
    if (reply.outcome !== 'in-progress') return reply;
    const now = Date.now();
    const where = describeProgress(reply);
    if (where !== seen) {
      seen = where;
      progressedAt = now;
    }
    if (reply.step !== reported.step || now - reported.at >= ADD_REPORT_EVERY_MS) {
      reported = { step: reply.step, at: now };
      process.stderr.write(`cluster add ${o.name}: ${where} (${Math.round((now - startedAt) / 1000)} s)\n`);
    }
    const retry = `check \`conclave cluster list --via ${o.via}\` and retry (adding a member twice is a no-op)`;
    if (now - progressedAt >= o.stallMs) {
      throw conclaveError('CATCH_UP', `cluster add ${o.name}: no progress for ${Math.round(o.stallMs / 1000)} s (${where}); is ${o.name} running and reachable? ${retry}`);
    }
    if (o.timeoutMs !== null && now - startedAt >= o.timeoutMs) {
      throw conclaveError('TIMEOUT', `cluster add ${o.name} did not finish within --timeout ${o.timeoutMs} ms (${where}); it may still complete — ${retry}`);
    }
  }
}

function describeProgress(p: AddProgress): string {
  const parts = [p.step];
  if (p.snapshotBytes > 0) parts.push(`snapshot ${(p.snapshotBytes / 1e6).toFixed(1)} MB received`);
  if (p.commitIndex > 0) parts.push(`log ${p.matchIndex} of ${p.commitIndex}`);
  return parts.join(', ');
}
