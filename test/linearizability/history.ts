// A history: operations with their invocation and completion times, as the clients saw them.
// Every operation works on one key of a key-value map (a single register is the map with one key).
// An operation whose outcome is unknown (timeout, lost connection, "outcome unknown") has
// `output: undefined` and `ret: Infinity`: it may take effect at any time after its invocation, or never.

/** a JSON value as canonical text (object keys sorted), so equal values compare equal as strings */
export type Json = string;

export type Input =
  | { f: 'get' }
  | { f: 'put'; value: Json }
  | { f: 'del' }
  | { f: 'cas'; expected: Json; value: Json };

export type Output =
  /** found: false for an absent key (its value then reads as null) */
  | { f: 'get'; found: boolean; value: Json }
  /** previous: the value replaced (canonical `null` for none), when the client learned it */
  | { f: 'put'; previous?: Json | undefined }
  | { f: 'del'; deleted?: boolean | undefined }
  | { f: 'cas'; swapped: boolean };

export interface Operation {
  /** position in the history as given (stable ids for reports) */
  id: number;
  process: string;
  key: string;
  input: Input;
  /** undefined: the outcome is unknown */
  output: Output | undefined;
  call: number;
  ret: number;
}

export const NULL_JSON: Json = 'null';

/** canonical JSON text: objects with sorted keys, so that {a,b} and {b,a} are one value */
export function canonical(value: unknown): Json {
  return JSON.stringify(sortKeys(value)) ?? NULL_JSON;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

export function describe(op: Operation): string {
  const i = op.input;
  const call = i.f === 'get' || i.f === 'del' ? `${i.f}(${op.key})` : i.f === 'put' ? `put(${op.key}, ${i.value})` : `cas(${op.key}, ${i.expected} → ${i.value})`;
  const o = op.output;
  if (o === undefined) return `${call} → ?`;
  switch (o.f) {
    case 'get':
      return `${call} → ${o.found ? o.value : 'absent'}`;
    case 'put':
      return o.previous === undefined ? `${call} → ok` : `${call} → ok (previous ${o.previous})`;
    case 'del':
      return o.deleted === undefined ? `${call} → ok` : `${call} → ${o.deleted ? 'deleted' : 'was absent'}`;
    case 'cas':
      return `${call} → ${o.swapped ? 'swapped' : 'not swapped'}`;
  }
}
