// Nesting limits. Whatever the leader accepts into the log must be encodable, appliable and
// decodable on every node: JSON and the store's encoder recurse, and overflow the stack somewhere
// past a thousand levels. A value a user writes (a KV value, a host command, a seed value) nests at
// most MAX_VALUE_DEPTH levels of arrays/objects — checked at every door (propose, initFrom); any
// message on the bus at most MAX_MESSAGE_DEPTH — checked before it is parsed (codec.ts).

export const MAX_VALUE_DEPTH = 64;
/** a value plus the envelopes around it (raft append, snapshot chunk, admin request), with room for host snapshots */
export const MAX_MESSAGE_DEPTH = 200;

/** does `value` nest arrays/objects more than `levels` deep? Iterative: the value may be deep enough to overflow a recursion. */
export function nestsDeeperThan(value: unknown, levels: number): boolean {
  return firstProblem(value, levels) !== null;
}

/**
 * Why `value` is not a value JSON could carry nesting at most `levels` deep (a value decoded from
 * another encoding, e.g. a stored record a peer sent: it may hold a Date, a buffer, NaN), or null.
 * `undefined` is let through inside an array or object: a host state's snapshot may hold it (where
 * JSON would leave a field out or write null), and the leader's own store keeps it as it is.
 */
export function jsonValueRefusal(value: unknown, levels: number): string | null {
  return firstProblem(value, levels, notJson);
}

/** the first problem walking `value` (iteratively): nesting past `levels`, or what `check` says of a node */
function firstProblem(value: unknown, levels: number, check?: (node: unknown, depth: number) => string | null): string | null {
  const stack: Array<[unknown, number]> = [[value, 0]];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    const problem = check?.(node, depth) ?? null;
    if (problem !== null) return problem;
    if (node === null || typeof node !== 'object' || seen.has(node)) continue;
    if (depth + 1 > levels) return `it nests arrays/objects more than ${levels} levels deep`;
    seen.add(node);
    for (const child of Array.isArray(node) ? node : Object.values(node)) stack.push([child, depth + 1]);
  }
  return null;
}

/** what a node of a value (at `depth`) is that JSON has not (null when JSON has it, or may leave it out) */
function notJson(node: unknown, depth: number): string | null {
  switch (typeof node) {
    case 'string':
    case 'boolean':
      return null;
    case 'undefined':
      return depth > 0 ? null : 'it is undefined';
    case 'number':
      return Number.isFinite(node) ? null : `it holds the number ${node}`;
    case 'object': {
      if (node === null || Array.isArray(node)) return null;
      const proto = Object.getPrototypeOf(node);
      return proto === Object.prototype || proto === null ? null : `it holds a ${(node as object).constructor?.name ?? 'non-plain object'}`;
    }
    default:
      return `it holds a ${typeof node}`;
  }
}

/** a JSON string (skipped whole), or one bracket */
const STRING_OR_BRACKET = /"[^"\\]*(?:\\.[^"\\]*)*"|[[{\]}]/g;

/**
 * Does the JSON text nest arrays/objects more than `levels` deep? No parsing: a text with at most
 * `levels` opening brackets (strings' included) cannot, and counting them is a few native searches —
 * what nearly every message takes; else one native regex pass that skips strings.
 */
export function textNestsDeeperThan(text: string, levels: number): boolean {
  if (openingsAtMost(text, levels)) return false;
  let depth = 0;
  STRING_OR_BRACKET.lastIndex = 0;
  for (let m = STRING_OR_BRACKET.exec(text); m !== null; m = STRING_OR_BRACKET.exec(text)) {
    const c = m[0].charCodeAt(0);
    if (c === 0x5b || c === 0x7b) {
      if (++depth > levels) return true;
    } else if (c !== 0x22) {
      depth--;
    }
  }
  return false;
}

/** whether `text` holds at most `limit` '[' and '{' characters in all (stops counting past it) */
function openingsAtMost(text: string, limit: number): boolean {
  let n = 0;
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) if (++n > limit) return false;
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) if (++n > limit) return false;
  return true;
}

/**
 * The one nesting check at every door (propose, initFrom): why `value` may not enter the log, or
 * null. `wrappers`: levels around the user's value that do not count (the KV's command object).
 */
export function valueRefusal(value: unknown, what: string, wrappers = 0): string | null {
  if (!nestsDeeperThan(value, MAX_VALUE_DEPTH + wrappers)) return null;
  return `${what} nests arrays/objects more than ${MAX_VALUE_DEPTH} levels deep, over the limit of ${MAX_VALUE_DEPTH}; store it flatter`;
}
