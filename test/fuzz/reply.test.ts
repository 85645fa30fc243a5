// The admin reply check that the CLI runs without zod (runtime/wire/envelope.ts `checkReply`) accepts
// and returns exactly what the zod schema it replaced accepted and returned: that schema is kept
// here as the specification. Replies are input from the bus: every shape, value and junk.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { z } from 'zod';
import { checkReply, decodeReply } from '../../runtime/wire/envelope.ts';
import { fuzzParams } from '../helpers/fuzz.ts';

/** runtime/wire/codec.ts's replySchema before the CLI stopped loading zod */
const replySchema = z.union([
  z.object({ ok: z.literal(true), body: z.unknown() }),
  z.object({
    ok: z.literal(false),
    error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
  }),
]);

const junk = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant(undefined));
const anyError = fc.oneof(
  junk,
  fc.record({ code: junk, message: junk, details: junk }, { requiredKeys: [] }),
  fc.record({ code: fc.string(), message: fc.string(), details: junk }, { requiredKeys: ['code', 'message'] }),
  fc.dictionary(fc.string(), junk),
);
/** near-misses as often as valid replies: every key present or not, of the right type or not */
const anyReply = fc.oneof(
  junk,
  fc.record({ ok: fc.oneof(fc.boolean(), junk), body: junk, error: anyError, extra: junk }, { requiredKeys: [] }),
  fc.record({ ok: fc.constant(false), error: anyError }, { requiredKeys: ['ok'] }),
  fc.record({ ok: fc.constant(true), body: junk }, { requiredKeys: ['ok'] }),
  fc.array(junk, { maxLength: 3 }),
);

describe('the CLI reply check, without zod', () => {
  it('accepts what the zod schema accepted and returns what it returned', () => {
    fc.assert(
      fc.property(anyReply, (raw) => {
        const reference = replySchema.safeParse(raw);
        const checked = checkReply(raw);
        if (reference.success) assert.deepEqual(checked, reference.data);
        else assert.equal(typeof checked, 'string', `accepted what zod refuses: ${JSON.stringify(raw)}`);
      }),
      fuzzParams(2000),
    );
  });

  it('decodeReply never throws: unreadable or malformed bytes are a BAD_REPLY', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), anyReply.map((r) => new TextEncoder().encode(JSON.stringify(r) ?? ''))), (bytes) => {
        const reply = decodeReply(bytes);
        if (!reply.ok) assert.equal(typeof reply.error.message, 'string');
      }),
      fuzzParams(1000),
    );
    assert.deepEqual(decodeReply(new TextEncoder().encode('{"ok":false,"error":{"code":"X"}}')), {
      ok: false,
      error: { code: 'BAD_REPLY', message: 'malformed reply: error.message: not a string' },
    });
    assert.deepEqual(decodeReply(new TextEncoder().encode('[[')), {
      ok: false,
      error: { code: 'BAD_REPLY', message: `unreadable reply: ${(() => { try { JSON.parse('[['); } catch (err) { return (err as Error).message; } })()}` },
    });
  });
});
