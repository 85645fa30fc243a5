// The boot counter: a number of this node that grows at every open of its store, written once, in the
// transaction that loads the identity (loadIdentity.ts). A member's MACed peer messages carry it, so
// that a receiver can tell the messages of its new process from copies of its old ones recorded from
// the bus (runtime/wire/replayWindow.ts). It is the larger of the last one plus one and the clock in
// milliseconds: it grows even when the clock went back, and also for a store put back from an older
// copy (whose counter the members have seen pass) as long as the clock went on. Its own record in the
// identity database: a store of an older release has none (the next open starts it), and a release
// that does not know it leaves it alone.
import { z } from 'zod';

export const K_BOOT = 'boot';

const storedSchema = z.object({ boot: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER - 1), at: z.string() });

/** the record as stored */
export interface StoredBoot {
  boot: number;
  /** when it was taken (ISO), for a person reading the store */
  at: string;
}

/** the boot counter after `raw` (the stored record; undefined: none yet), or why `raw` is not one */
export function nextBoot(raw: unknown, now: number): StoredBoot | string {
  if (raw === undefined) return { boot: Math.max(1, now), at: new Date(now).toISOString() };
  const res = storedSchema.safeParse(raw);
  if (!res.success) return 'the boot counter record is malformed';
  return { boot: Math.max(res.data.boot + 1, now), at: new Date(now).toISOString() };
}
