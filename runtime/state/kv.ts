// The built-in replicated state: a key-value map. Commands are applied deterministically, in log
// order, in batches; the effects of a batch are written atomically with the new applied index.
import { z } from 'zod';

/** a key the KV may write: keys starting with NUL are reserved (runtime/state/host.ts stores a host state under one) */
const writableKey = z
  .string()
  .min(1)
  .max(1024)
  .refine((key) => key.charCodeAt(0) !== 0, 'keys starting with a NUL character are reserved for Conclave');

export const kvCommandSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('put'), key: writableKey, value: z.unknown() }),
  z.strictObject({ op: z.literal('del'), key: writableKey }),
  z.strictObject({ op: z.literal('cas'), key: writableKey, expected: z.unknown(), value: z.unknown() }),
]);
export type KvCommand = z.infer<typeof kvCommandSchema>;

export const kvQuerySchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('get'), key: z.string().min(1).max(1024) }),
  z.strictObject({ op: z.literal('list'), prefix: z.string().max(1024).optional(), limit: z.number().int().min(1).max(10_000).optional() }),
]);
export type KvQuery = z.infer<typeof kvQuerySchema>;

export type KvResult =
  | { op: 'put'; key: string; previous: unknown | null }
  | { op: 'del'; key: string; deleted: boolean }
  | { op: 'cas'; key: string; swapped: boolean; current: unknown | null }
  | { op: 'invalid'; error: string };

/** What the KV needs from the store: reads of the committed state. */
export interface StateReader {
  stateGet(key: string): unknown | undefined;
  stateRange(opts?: { prefix?: string; limit?: number }): Iterable<[string, unknown]>;
}

export interface StateOp {
  key: string;
  value?: unknown;
}

/**
 * Apply a batch of commands. Later commands in the batch see earlier ones (an overlay), so the
 * result is the same as applying them one by one. Returns one result per command and the ops to
 * persist with the batch's last index. Invalid commands are answered, never thrown: apply must be
 * deterministic on every node.
 */
export function applyKvBatch(reader: StateReader, commands: readonly unknown[]): { results: KvResult[]; ops: StateOp[] } {
  const overlay = new Map<string, unknown>();
  const read = (key: string): unknown | undefined => (overlay.has(key) ? overlay.get(key) : reader.stateGet(key));
  const results: KvResult[] = [];
  for (const raw of commands) {
    const parsed = kvCommandSchema.safeParse(raw);
    if (!parsed.success) {
      results.push({ op: 'invalid', error: parsed.error.issues[0]?.message ?? 'invalid command' });
      continue;
    }
    const cmd = parsed.data;
    const current = read(cmd.key);
    switch (cmd.op) {
      case 'put':
        overlay.set(cmd.key, cmd.value ?? null);
        results.push({ op: 'put', key: cmd.key, previous: current ?? null });
        break;
      case 'del':
        overlay.set(cmd.key, undefined);
        results.push({ op: 'del', key: cmd.key, deleted: current !== undefined });
        break;
      case 'cas': {
        const swapped = sameJson(current ?? null, cmd.expected ?? null);
        if (swapped) overlay.set(cmd.key, cmd.value ?? null);
        results.push({ op: 'cas', key: cmd.key, swapped, current: swapped ? (cmd.value ?? null) : (current ?? null) });
        break;
      }
    }
  }
  const ops: StateOp[] = [];
  for (const [key, value] of overlay) ops.push(value === undefined ? { key } : { key, value });
  return { results, ops };
}

export function queryKv(reader: StateReader, query: KvQuery): unknown {
  if (query.op === 'get') {
    const value = reader.stateGet(query.key);
    return { key: query.key, found: value !== undefined, value: value ?? null };
  }
  const items: Array<{ key: string; value: unknown }> = [];
  for (const [key, value] of reader.stateRange({ prefix: query.prefix, limit: query.limit ?? 1000 })) items.push({ key, value });
  return { items };
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
