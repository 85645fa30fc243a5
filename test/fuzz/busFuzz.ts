// The bus fuzz (test/fuzz/bus*.test.ts): random and mutated envelopes of every peer, admin and discover message type, into a running
// three-node cluster. Two properties, scoped apart on purpose:
// - invalid input (a typed field given a shape no schema accepts, a foreign cluster id, another
//   protocol version, an unknown type, truncated, not UTF-8, nested too deep) changes nothing: phase,
//   term, leader, configuration, log and data are the same on every node afterwards;
// - any mutation (bytes, fields, values) never crashes a node: no uncaught exception, every node
//   answers and stays a member, and the cluster still commits. Some of these are forged but valid
//   (a vote for a higher term, a timeout-now): until peers are authenticated they may legitimately
//   move terms and leaders, so this property does not compare those.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_MESSAGE_DEPTH } from '../../runtime/wire/limits.ts';
import { waitUntil } from '../helpers/cli.ts';
import { fuzzParams } from '../helpers/fuzz.ts';
import { allAnswer, clusterState, envelopeOf, type FuzzCluster, type Seed, seeds, setAt, typedLeaves } from './busCluster.ts';

const encoder = new TextEncoder();
const bytesOf = (envelope: unknown) => encoder.encode(JSON.stringify(envelope));

const invalidMutation = fc.record({
  seed: fc.nat(),
  kind: fc.constantFrom('leaf', 'version', 'foreign', 'type', 'truncate', 'utf8', 'deep'),
  pick: fc.nat(),
  junk: fc.array(fc.jsonValue(), { maxLength: 3 }),
  version: fc.integer({ min: -3, max: 1000 }).filter((v) => v !== 1),
  foreign: fc.uuid(),
  type: fc.string({ maxLength: 20 }),
});

/** a mutation no node may accept: the encoded bytes to send */
function invalidBytes(seed: Seed, m: typeof invalidMutation extends fc.Arbitrary<infer T> ? T : never): Uint8Array {
  const envelope = envelopeOf(seed);
  const isPeer = seed.subject.endsWith('.peer');
  switch (m.kind === 'foreign' && !isPeer ? 'leaf' : m.kind) {
    case 'leaf': {
      const leaves = typedLeaves(envelope);
      setAt(envelope, leaves[m.pick % leaves.length]!, m.junk); // an array is no typed field's shape
      return bytesOf(envelope);
    }
    case 'version':
      return bytesOf({ ...envelope, v: m.version });
    case 'foreign':
      return bytesOf({ ...envelope, clusterId: m.foreign });
    case 'type':
      return bytesOf({ ...envelope, type: `x-${m.type}` });
    case 'truncate': {
      const bytes = bytesOf(envelope);
      return bytes.subarray(0, m.pick % bytes.length);
    }
    case 'utf8': {
      const bytes = bytesOf(envelope);
      const at = m.pick % bytes.length;
      return Uint8Array.from([...bytes.subarray(0, at), 0xff, ...bytes.subarray(at)]);
    }
    default: {
      let deep: unknown = envelope.body;
      for (let i = 0; i < MAX_MESSAGE_DEPTH + 1; i++) deep = [deep];
      return bytesOf({ ...envelope, body: deep });
    }
  }
}

const anyMutation = fc.record({
  seed: fc.nat(),
  kind: fc.constantFrom('leaf', 'delete', 'bytes', 'truncate', 'random', 'repeat', 'readdress'),
  pick: fc.nat(),
  value: fc.jsonValue({ maxDepth: 4 }),
  bytes: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
  random: fc.uint8Array({ maxLength: 300 }),
  to: fc.nat(),
});

function allLeaves(value: unknown, path: Array<string | number> = []): Array<Array<string | number>> {
  if (value === null || typeof value !== 'object') return [path];
  const entries: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return [path, ...entries.flatMap(([k, v]) => allLeaves(v, [...path, k]))];
}

/** any mutation: the subject and the bytes (one or more times) to send */
function anyBytes(seed: Seed, m: typeof anyMutation extends fc.Arbitrary<infer T> ? T : never, names: string[]): { subject: string; data: Uint8Array; times: number } {
  const envelope = envelopeOf(seed);
  let subject = seed.subject;
  let times = 1;
  let data: Uint8Array;
  const paths = allLeaves(envelope).filter((p) => p.length > 0);
  const path = paths[m.pick % paths.length]!;
  switch (m.kind) {
    case 'leaf':
      setAt(envelope, path, m.value);
      data = bytesOf(envelope);
      break;
    case 'delete': {
      let parent = envelope as Record<string | number, unknown>;
      for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
      if (Array.isArray(parent)) parent.splice(Number(path[path.length - 1]), 1);
      else delete parent[path[path.length - 1]!];
      data = bytesOf(envelope);
      break;
    }
    case 'bytes':
      data = bytesOf(envelope);
      for (const [at, byte] of m.bytes) data[at % data.length] = byte;
      break;
    case 'truncate':
      data = bytesOf(envelope).subarray(0, m.pick % 200);
      break;
    case 'random':
      data = m.random;
      break;
    case 'repeat':
      data = bytesOf(envelope);
      times = 2 + (m.pick % 20);
      break;
    default:
      data = bytesOf(envelope);
      subject = subject.replace(/\.node\.[^.]+\./, `.node.${names[m.to % names.length]}.`);
  }
  return { subject, data, times };
}

/** the properties, against a cluster that `setup` starts */
export function busFuzz(label: string, runs: { invalid: number; any: number }, setup: () => Promise<FuzzCluster>, teardown: () => Promise<void> = async () => {}) {
  describe(label, () => {
    let cluster: FuzzCluster;
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    before(async () => {
      process.on('uncaughtException', onUncaught);
      process.on('unhandledRejection', onUncaught);
      cluster = await setup();
    });
    after(async () => {
      await cluster?.stop();
      await teardown();
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
    });

    if (runs.invalid > 0) {
      it('invalid envelopes change nothing on any node (phase, term, leader, configuration, log, data)', async () => {
        const { nodes, client } = cluster;
        const list = seeds(nodes);
        const before = await clusterState(nodes);
        await fc.assert(
          fc.asyncProperty(invalidMutation, async (m) => {
            const seed = list[m.seed % list.length]!;
            client.publish(seed.subject, invalidBytes(seed, m));
            await allAnswer(client, nodes);
            assert.deepEqual(await clusterState(nodes), before, `after ${seed.type} on ${seed.subject}`);
          }),
          fuzzParams(runs.invalid),
        );
        assert.deepEqual(uncaught, []);
      });
    }

    it('any mutated envelope leaves every node running, answering, a member, and the cluster committing', async () => {
      const { nodes, client } = cluster;
      const list = seeds(nodes);
      const names = nodes.map((c) => c.name);
      await fc.assert(
        fc.asyncProperty(anyMutation, async (m) => {
          const seed = list[m.seed % list.length]!;
          const { subject, data, times } = anyBytes(seed, m, names);
          for (let i = 0; i < times; i++) client.publish(subject, data);
          await allAnswer(client, nodes);
          assert.deepEqual(uncaught, []);
          assert.deepEqual(
            nodes.map((c) => c.status().phase),
            nodes.map(() => 'member'),
          );
        }),
        fuzzParams(runs.any),
      );
      // still one cluster that commits: a write through any node lands, once a leader is elected
      await waitUntil(
        async () => {
          try {
            await nodes[2]!.propose({ op: 'put', key: 'after-fuzz', value: true });
            return true;
          } catch {
            return false;
          }
        },
        { timeoutMs: 60_000, what: 'a write to commit after the fuzz' },
      );
      assert.deepEqual(await nodes[0]!.read({ op: 'get', key: 'after-fuzz' }), { key: 'after-fuzz', found: true, value: true });
      assert.deepEqual(uncaught, []);
    });
  });
}

