// The node's side of operator sessions (runtime/wire/operatorSession.ts) without a bus: a session's
// numbers are taken once each, out of order within the window; a session expires; the oldest goes
// when the table is full; a key no longer listed loses its sessions; both sides derive the same key.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createOperatorKey } from '../../runtime/operatorKey.ts';
import { CLI_SENDER } from '../../runtime/cli/client.ts';
import { OperatorSessions, SEQ_WINDOW, SESSION_TTL_MS, SeqWindow, SessionTable } from '../../runtime/wire/operatorSession.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const SUBJECT = 'p.node.n1.admin';

describe('operator sessions, the node side', () => {
  const tmp = tmpDirs('conclave-session-table-');

  it('the window takes each number once, out of order within SEQ_WINDOW, and nothing further behind', () => {
    const w = new SeqWindow();
    assert.equal(w.take(1), true);
    assert.equal(w.take(3), true);
    assert.equal(w.take(2), true, 'late but within the window');
    for (const seq of [1, 2, 3]) assert.equal(w.take(seq), false, `${seq} again`);
    assert.equal(w.take(3 + SEQ_WINDOW), true);
    assert.equal(w.take(3), false, 'too far behind (highest − SEQ_WINDOW)');
    assert.equal(w.take(4), true, 'just inside the window (highest − SEQ_WINDOW + 1), never taken');
    assert.equal(w.take(4), false);
    assert.equal(w.take(10 * SEQ_WINDOW), true, 'a jump clears it');
    assert.equal(w.take(10 * SEQ_WINDOW - 1), true);
    assert.equal(w.take(10 * SEQ_WINDOW - 1), false);
  });

  /** a session opened by the client half against `table`, at wall-clock `now` */
  async function opened(table: SessionTable, operatorKey: string, now: number) {
    const client = new OperatorSessions(operatorKey, () => now);
    const session = await client.session(SUBJECT, async (request) => table.open(request, SUBJECT, now)!);
    assert.ok(session !== null);
    return { client, session };
  }

  it('both sides derive the same key; a request verifies until the session expires', async () => {
    const table = new SessionTable();
    const key = createOperatorKey(`${tmp.make()}/k`).publicKey;
    const t0 = Date.now();
    const { client, session } = await opened(table, key, t0);
    const data = client.seal(session, SUBJECT, CLI_SENDER, 'propose', { command: 1 });
    assert.deepEqual(table.verify(session.id, SUBJECT, data, t0), { operatorKey: key });
    assert.equal((table.verify(session.id, SUBJECT, data, t0) as { reason: string }).reason, 'replayed');
    assert.equal((table.verify(session.id, 'p.node.n2.admin', client.seal(session, SUBJECT, CLI_SENDER, 'propose', {}), t0) as { reason: string }).reason, 'bad-mac', 'bound to the subject');
    const later = client.seal(session, SUBJECT, CLI_SENDER, 'propose', { command: 2 });
    assert.equal((table.verify(session.id, SUBJECT, later, t0 + 61_000) as { reason: string }).reason, 'stale-time', 'a time more than the skew away');
    const last = client.seal(session, SUBJECT, CLI_SENDER, 'propose', { command: 3 });
    assert.equal((table.verify(session.id, SUBJECT, last, t0 + SESSION_TTL_MS) as { reason: string }).reason, 'expired-session');
    assert.equal((table.verify(session.id, SUBJECT, last, t0) as { reason: string }).reason, 'unknown-session', 'an expired session is forgotten');
  });

  it('a full table pushes out the oldest session; a key no longer listed loses its sessions', async () => {
    const table = new SessionTable(2);
    const dir = tmp.make();
    const a = createOperatorKey(`${dir}/a`).publicKey;
    const b = createOperatorKey(`${dir}/b`).publicKey;
    const now = Date.now();
    const first = await opened(table, a, now);
    const second = await opened(table, b, now);
    const third = await opened(table, a, now);
    assert.equal(table.size, 2);
    const reason = (s: Awaited<ReturnType<typeof opened>>) => (table.verify(s.session.id, SUBJECT, s.client.seal(s.session, SUBJECT, CLI_SENDER, 'status', {}), now) as { reason?: string }).reason;
    assert.equal(reason(first), 'unknown-session', 'the oldest went');
    assert.equal(reason(second), undefined);
    table.retain((key) => key === b);
    assert.equal(reason(third), 'unknown-session', "a's session went with its key");
    assert.equal(reason(second), undefined, "b's stays");
  });
});
