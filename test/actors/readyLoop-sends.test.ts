// The ready loop lets what it sent leave before it blocks the thread: the NATS client writes what is
// published to its socket in a microtask, and a store write is synchronous (LMDB), so a leader that
// wrote its entries right after publishing its appends held them back for the whole disk write —
// measured on loopback: the followers received the appends after the leader's write, ≈1 ms later.
// The bus here stands in for the NATS client: publish() queues its socket write in a microtask.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { letMicrotasksRun } from '../../actors/memberParts.ts';
import { authenticatingBus } from '../../actors/peerWire.ts';
import { type ReadyHands, ReadyLoop } from '../../actors/readyLoop.ts';
import type { RaftCore, Ready } from '../../machines/raft/core.ts';
import type { RaftMessage } from '../../machines/raft/messages.ts';
import type { Entry } from '../../machines/raft/types.ts';
import { connectNats } from '../../runtime/transport/index.ts';
import { natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';

const entry: Entry = { index: 2, term: 1, type: 'command', data: 'x' };
const message = { type: 'append', from: 'a', to: 'b', term: 1 } as unknown as RaftMessage;

function ready(role: 'leader' | 'follower'): Ready {
  return {
    hardState: { term: 1, vote: null, commit: role === 'leader' ? 1 : 2 },
    entries: [entry],
    committed: role === 'follower' ? [{ ...entry, index: 1 }] : [],
    messages: [message],
    readStates: [],
    failedReads: [],
    refused: [],
  };
}

/** one Ready through the loop; what happened, in order */
async function run(role: 'leader' | 'follower', letSendsLeave: ReadyHands['letSendsLeave']): Promise<string[]> {
  const seen: string[] = [];
  let pending: Ready | null = ready(role);
  const core = {
    currentRole: role,
    commitIndex: 1,
    hasReady: () => pending !== null,
    ready: () => {
      const rd = pending!;
      pending = null;
      return rd;
    },
    advance: () => {},
  } as unknown as RaftCore;
  const loop = new ReadyLoop({
    core: () => core,
    persist: () => {
      seen.push('disk write');
      return Promise.resolve(); // as NodeStore.persist: written inside the call
    },
    installSnapshot: () => {},
    send: () => {
      seen.push('publish');
      queueMicrotask(() => seen.push('socket write'));
    },
    letSendsLeave,
    apply: () => {
      seen.push('apply');
    },
    settle: () => {},
    advanced: () => {},
    beforeRound: () => {},
    done: () => false,
    halt: (err) => assert.fail(String(err)),
    soon: (fn) => fn(),
  });
  loop.restore({ term: 1, vote: null, commit: 0 }); // the term is durable already: a leader sends first
  await loop.drain();
  return seen;
}

test("a leader's appends reach the socket before its disk write", async () => {
  assert.deepEqual(await run('leader', letMicrotasksRun), ['publish', 'socket write', 'disk write']);
  // without it (a bus that needs none): the write would wait for the disk
  assert.deepEqual(await run('leader', undefined), ['publish', 'disk write', 'socket write']);
});

test("a follower's acknowledgement reaches the socket before it applies", async () => {
  assert.deepEqual(await run('follower', letMicrotasksRun), ['disk write', 'publish', 'socket write', 'apply']);
});

test('the NATS bus says its writes are deferred, and the wrappers a member runs on pass it on', { skip: natsServerSkipReason() }, async () => {
  const server = await startNatsServer();
  try {
    const bus = await connectNats({ servers: server.url, name: 'deferred-writes' });
    try {
      assert.equal(bus.deferredWrites, true);
      const { privateKey } = generateKeyPairSync('ed25519');
      assert.equal(authenticatingBus(bus, privateKey, () => 'unchecked', 1).deferredWrites, true, 'the authenticating bus');
    } finally {
      await bus.close();
    }
  } finally {
    await server.stop();
  }
});
