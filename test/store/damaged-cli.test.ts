// Issue 17, item 4 (acceptance 3) through the real CLI: a damaged store — truncated to 0 bytes or
// mid-file, a zeroed or random page, a flipped byte in a record, a FIFO or a directory in place of
// data.mdb, a data dir below a regular file — is refused by `conclave run`, `conclave store verify`
// and `conclave recover` with exit 2 and ONE `error:` line naming the file, what is wrong and what
// to do; no crash signal; the store is left exactly as found.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from '../helpers/natsServer.ts';
import { type CliResult, runCli } from '../helpers/cli.ts';
import { fingerprintDir, tmpDirs } from '../helpers/tmp.ts';
import { assertUntouched, type Damage, damage, makeMemberStore, settle } from './damage.ts';

const tmp = tmpDirs('conclave-damaged-cli-');
after(() => tmp.cleanup());

/** deterministic "random" bytes (a fixed LCG): the random page is the same on every run */
function lcgBytes(n: number): Buffer {
  const out = Buffer.alloc(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function assertRefused(r: CliResult, what: string, line: RegExp): void {
  const context = `${what}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
  assert.equal(r.signal, null, `no crash signal: ${context}`);
  assert.equal(r.code, 2, `exit 2: ${context}`);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
  assert.equal(errors.length, 1, `one error line: ${context}`);
  assert.match(errors[0]!, line, context);
}

/** a refusal takes a second on a quiet machine; on the shared 2-core machine under load 50, starting
 * the CLI alone took 22 s (`--help`), so the deadline is generous: it only has to catch a hang */
const CLI_DEADLINE_MS = 180_000;

async function threeCommands(dataDir: string, natsUrl: string): Promise<Array<[string, CliResult]>> {
  // one after the other: each leaves the dir as found, which the next one must see
  const out: Array<[string, CliResult]> = [];
  out.push(['run', await runCli(['run', '--name', 'n1', '--data-dir', dataDir, '--nats', natsUrl], { timeoutMs: CLI_DEADLINE_MS })]);
  out.push(['store verify', await runCli(['store', 'verify', '--data-dir', dataDir], { timeoutMs: CLI_DEADLINE_MS })]);
  out.push(['recover', await runCli(['recover', '--data-dir', dataDir], { timeoutMs: CLI_DEADLINE_MS })]);
  return out;
}

const CASES: Array<{ kind: Damage; says: RegExp }> = [
  { kind: 'truncate-0', says: /data\.mdb.*(empty|0 bytes)/ },
  { kind: 'truncate-mid', says: /data\.mdb.*truncated/ },
  { kind: 'zero-page', says: /data\.mdb/ },
  { kind: 'random-page', says: /data\.mdb/ },
  { kind: 'flip-record', says: /data\.mdb.*(checksum|damaged)/ },
  { kind: 'fifo', says: /data\.mdb is a FIFO/ },
  { kind: 'directory', says: /data\.mdb is a directory/ },
];

describe('damaged stores through the CLI (run, store verify, recover)', () => {
  it('each damage is refused with exit 2 and one line, and the store is left as found', async () => {
    const natsUrl = `nats://127.0.0.1:${await freePort()}`; // nothing listens: a damaged store is refused before NATS
    const failures: string[] = [];
    const runCase = async ({ kind, says }: (typeof CASES)[number]) => {
      const dataDir = join(tmp.make(), 'n1');
      await makeMemberStore(dataDir);
      damage(dataDir, kind, lcgBytes);
      await settle();
      const before = fingerprintDir(dataDir);
      for (const [cmd, r] of await threeCommands(dataDir, natsUrl)) {
        try {
          assertRefused(r, `${kind}: conclave ${cmd}`, says);
          assertRefused(r, `${kind}: conclave ${cmd}`, /restore .*backup/);
          assertUntouched(before, dataDir, `${kind} after ${cmd}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    // two at a time: the machine is shared
    const queue = [...CASES];
    await Promise.all(
      [0, 1].map(async () => {
        for (let c = queue.shift(); c; c = queue.shift()) await runCase(c);
      }),
    );
    assert.deepEqual(failures, []);
  });

  it('a data dir below a regular file is a usage error (exit 2), and nothing is created', async () => {
    const root = tmp.make();
    const file = join(root, 'file');
    writeFileSync(file, 'not a directory');
    await settle();
    const before = fingerprintDir(root);
    const natsUrl = `nats://127.0.0.1:${await freePort()}`;
    for (const [cmd, r] of await threeCommands(join(file, 'n1'), natsUrl)) {
      assertRefused(r, `conclave ${cmd}`, new RegExp(`${file} is not a directory`));
      assertUntouched(before, root, `after ${cmd}`);
    }
  });
});
