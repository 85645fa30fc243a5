// The README's library snippets are these files, verbatim (typechecked with the rest), and they run.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ROOT } from '../helpers/cli.ts';
import { tmpDirs } from '../helpers/tmp.ts';
import { errorsExample } from './snippets/errors.ts';
import { eventsExample } from './snippets/events.ts';
import { ledgerExample } from './snippets/host-state.ts';
import { rolloutExample } from './snippets/machine.ts';

const tmp = tmpDirs('conclave-snippets-');
after(() => tmp.cleanup());

describe('README snippets', () => {
  it('each `<!-- snippet: FILE -->` block of the README is that file, verbatim', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/<!-- snippet: (\S+) -->\n```ts\n([\s\S]*?)```/g)];
    assert.deepEqual(blocks.map((b) => b[1]).sort(), ['test/examples/snippets/errors.ts', 'test/examples/snippets/events.ts', 'test/examples/snippets/host-state.ts', 'test/examples/snippets/machine.ts']);
    for (const [, file, code] of blocks) assert.equal(code, readFileSync(join(ROOT, file!), 'utf8'), `${file} differs from its README block`);
  });

  it('host state: results to the proposer, refusals answered, linearizable read', async () => {
    assert.deepEqual(await ledgerExample(join(tmp.make(), 'bank1')), { deposited: { balance: 100 }, refused: { error: 'insufficient funds' }, balance: 100 });
  });

  it('replicated machine: events move the machine; an event the state does not take is answered unhandled', async () => {
    const r = await rolloutExample(join(tmp.make(), 'flags1'));
    assert.deepEqual(r.promoted, { ok: true, handled: true, value: 'on', context: { percent: 100 } });
    assert.equal(r.ignored.ok && r.ignored.handled, false);
    assert.deepEqual(r.state, { value: 'on', context: { percent: 100 } });
  });

  it('events: phase, leader, membership and applied entries', async () => {
    const seen = await eventsExample(join(tmp.make(), 'watched1'));
    assert.deepEqual(seen.slice(0, 2), ['phase bootstrapping', 'phase member']);
    assert.ok(seen.includes('members watched1'), seen.join('\n'));
    assert.ok(seen.some((s) => /^leader watched1 in term \d+$/.test(s)), seen.join('\n'));
    assert.ok(seen.some((s) => /^applied #\d+ \{"op":"put","key":"color","value":"blue"\} → \{"op":"put","key":"color","previous":null\}$/.test(s)), seen.join('\n'));
  });

  it('errors: typed classes with the CLI codes', async () => {
    assert.deepEqual(await errorsExample(join(tmp.make(), 'careful1')), ['NOT_A_MEMBER (exit 1)', 'ALREADY_INITIALIZED']);
  });
});
