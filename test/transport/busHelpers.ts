// What the bus tests share: text payloads, waiting for a condition, the error a promise rejects with.
import type { BusMessage } from '../../runtime/transport/index.ts';

export const enc = new TextEncoder();
export const dec = new TextDecoder();
export const text = (m: BusMessage) => dec.decode(m.data);

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}
