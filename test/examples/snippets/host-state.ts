import { type ApplyMeta, type ReplicatedState, startController } from 'conclave';

type Command = { op: 'deposit' | 'withdraw'; account: string; amount: number };

/** Your own replicated state: every node applies every committed command, in log order. */
class Ledger implements ReplicatedState<Command, { balance: number } | { error: string }, string, number, Record<string, number>> {
  private balances: Record<string, number> = {};
  apply(cmd: Command, _meta: ApplyMeta) {
    const balance = this.balances[cmd.account] ?? 0;
    const next = cmd.op === 'deposit' ? balance + cmd.amount : balance - cmd.amount;
    if (next < 0) return { error: 'insufficient funds' }; // answered the same on every node; never thrown
    this.balances[cmd.account] = next;
    return { balance: next };
  }
  query(account: string) {
    return this.balances[account] ?? 0;
  }
  snapshot() {
    return this.balances; // stored with the applied index, and sent to new members
  }
  restore(snapshot: Record<string, number> | null) {
    this.balances = { ...(snapshot ?? {}) };
  }
}

export async function ledgerExample(dataDir: string) {
  const ctrl = await startController({ name: 'bank1', dataDir, state: new Ledger() });
  await ctrl.init();
  await ctrl.waitForLeader();
  const deposited = await ctrl.propose({ op: 'deposit', account: 'alice', amount: 100 }); // { balance: 100 }
  const refused = await ctrl.propose({ op: 'withdraw', account: 'alice', amount: 500 }); // { error: 'insufficient funds' }
  const balance = await ctrl.read('alice'); // 100, linearizable
  await ctrl.stop();
  return { deposited, refused, balance };
}
