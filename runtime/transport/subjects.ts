// Subjects as NATS has them, shared by both transports: validation of what is published and
// subscribed to, a trie that matches a subject against wildcard patterns ('*' one token, '>' the
// rest), and the private payload copy a bus hands its subscribers.
import { InvalidSubjectError } from './types.ts';

// --- payload copies ----------------------------------------------------------------------------

// A fresh ArrayBuffer per small message costs ~2 us in V8 (more than the rest of a publish), so small
// payloads are copied into views of a shared slab. A view keeps its 16 KiB slab alive while it is held.
const SLAB_SIZE = 16 * 1024;
const SLAB_MAX_COPY = 1024;
const EMPTY = new Uint8Array(0);
let slab = new ArrayBuffer(SLAB_SIZE);
let slabOffset = 0;

/** a private copy of `src` (a plain Uint8Array, possibly a view with a byteOffset) */
export function copyBytes(src: Uint8Array): Uint8Array {
  const n = src.byteLength;
  if (n === 0) return EMPTY;
  if (n > SLAB_MAX_COPY) {
    const out = new Uint8Array(n);
    out.set(src);
    return out;
  }
  if (slabOffset + n > SLAB_SIZE) {
    slab = new ArrayBuffer(SLAB_SIZE);
    slabOffset = 0;
  }
  const out = new Uint8Array(slab, slabOffset, n);
  out.set(src);
  slabOffset += (n + 7) & ~7; // 8-byte aligned, so a DataView or Float64Array over a view stays cheap
  return out;
}

// --- subject validation (shared with the NATS transport) -------------------------------------

const WHITESPACE = /\s/;

/** a subject to publish to: non-empty tokens, no whitespace, no wildcard tokens */
export function validatePublishSubject(subject: string): void {
  // a node publishes on a handful of subjects, over and over: each is checked once
  if (validPublishSubjects.has(subject)) return;
  checkCommon(subject);
  for (const token of subject.split('.')) {
    if (token === '*' || token === '>') {
      throw new InvalidSubjectError(subject, 'wildcards are not allowed when publishing');
    }
  }
  if (validPublishSubjects.size >= MAX_REMEMBERED_SUBJECTS) validPublishSubjects.clear();
  validPublishSubjects.add(subject);
}

/** subjects validatePublishSubject found valid (bounded: cleared when full; reply inboxes are many) */
const validPublishSubjects = new Set<string>();
const MAX_REMEMBERED_SUBJECTS = 1024;

/** a subject to subscribe to: '*' matches one token, '>' one or more and only as the last token */
export function validateSubscribeSubject(subject: string): void {
  checkCommon(subject);
  const tokens = subject.split('.');
  for (let i = 0; i < tokens.length - 1; i++) {
    if (tokens[i] === '>') throw new InvalidSubjectError(subject, "'>' is only allowed as the last token");
  }
}

export function validateQueueName(queue: string): void {
  if (typeof queue !== 'string' || queue.length === 0 || WHITESPACE.test(queue)) {
    throw new Error(`invalid queue group ${JSON.stringify(queue)}: must be non-empty without whitespace`);
  }
}

function checkCommon(subject: string): void {
  if (typeof subject !== 'string' || subject.length === 0) {
    throw new InvalidSubjectError(String(subject), 'empty subject');
  }
  if (WHITESPACE.test(subject)) throw new InvalidSubjectError(subject, 'whitespace is not allowed');
  // catches leading, trailing and doubled dots in one check
  if (subject.startsWith('.') || subject.endsWith('.') || subject.includes('..')) {
    throw new InvalidSubjectError(subject, 'empty token');
  }
}

// --- the subscription trie ---------------------------------------------------------------------

/** what the trie holds: anything subscribed to a subject pattern */
export interface TrieSub {
  readonly subject: string;
}

class TrieNode<Sub extends TrieSub> {
  readonly literal = new Map<string, TrieNode<Sub>>();
  star: TrieNode<Sub> | undefined;
  /** subscriptions whose pattern ends here */
  readonly subs = new Set<Sub>();
  /** subscriptions whose pattern ends here followed by '>' */
  readonly full = new Set<Sub>();

  isEmpty(): boolean {
    return this.literal.size === 0 && this.star === undefined && this.subs.size === 0 && this.full.size === 0;
  }
}

export class SubjectTrie<Sub extends TrieSub> {
  private readonly root = new TrieNode<Sub>();
  size = 0;

  insert(sub: Sub): void {
    let node = this.root;
    const tokens = sub.subject.split('.');
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (t === '>') {
        node.full.add(sub);
        this.size++;
        return;
      }
      let next = t === '*' ? node.star : node.literal.get(t);
      if (next === undefined) {
        next = new TrieNode<Sub>();
        if (t === '*') node.star = next;
        else node.literal.set(t, next);
      }
      node = next;
    }
    node.subs.add(sub);
    this.size++;
  }

  remove(sub: Sub): void {
    const tokens = sub.subject.split('.');
    const path: Array<TrieNode<Sub>> = [this.root];
    let node: TrieNode<Sub> | undefined = this.root;
    const last = tokens[tokens.length - 1];
    const depth = last === '>' ? tokens.length - 1 : tokens.length;
    for (let i = 0; i < depth && node; i++) {
      const t = tokens[i]!;
      node = t === '*' ? node.star : node.literal.get(t);
      if (node) path.push(node);
    }
    if (!node) return;
    const removed = last === '>' ? node.full.delete(sub) : node.subs.delete(sub);
    if (removed) this.size--;
    // prune empty nodes so churn (e.g. per-peer subjects) does not grow the trie forever
    for (let i = path.length - 1; i > 0; i--) {
      const child = path[i]!;
      if (!child.isEmpty()) break;
      const parent = path[i - 1]!;
      const t = tokens[i - 1]!;
      if (t === '*') parent.star = undefined;
      else parent.literal.delete(t);
    }
  }

  match(subject: string): Sub[] {
    const out: Sub[] = [];
    collect(this.root, subject.split('.'), 0, out);
    return out;
  }
}

function collect<Sub extends TrieSub>(node: TrieNode<Sub>, tokens: string[], i: number, out: Sub[]): void {
  if (i === tokens.length) {
    for (const s of node.subs) out.push(s);
    return;
  }
  // '>' needs at least one more token, which there is
  for (const s of node.full) out.push(s);
  const lit = node.literal.get(tokens[i]!);
  if (lit) collect(lit, tokens, i + 1, out);
  if (node.star) collect(node.star, tokens, i + 1, out);
}
