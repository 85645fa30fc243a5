// Summarize a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by file/package.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  totalMs: number;
  /** ms not idle */
  busyMs: number;
  byFunction: Array<{ fn: string; where: string; selfMs: number; pct: number }>;
  byFile: Array<{ file: string; selfMs: number; pct: number }>;
  /** inclusive time of selected frames (own code entry points): how much sits below them */
  inclusive: Array<{ fn: string; where: string; totalMs: number; pct: number }>;
}

function where(url: string, line: number, root: string): string {
  if (!url) return '(native)';
  let path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    path = path.slice(nm + '/node_modules/'.length);
    return `${path}:${line + 1}`;
  }
  if (path.startsWith('/')) path = relative(root, path);
  return `${path}:${line + 1}`;
}

function fileOf(url: string, root: string): string {
  if (!url) return '(native / vm)';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    const pkg = rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    return `[pkg] ${pkg}`;
  }
  if (path.startsWith('node:')) return `[node] ${path.slice(5).split('/')[0]}`;
  if (path.startsWith('/')) return relative(root, path);
  return path;
}

export function summarizeProfile(file: string, root: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  // self time per node from samples × time deltas (more exact than hitCount × interval)
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i]!;
    // a sample's duration is the delta to the next sample
    const dt = (deltas[i + 1] ?? 0) / 1000;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  let idleMs = 0;
  const fnTimes = new Map<string, { fn: string; where: string; selfMs: number }>();
  const fileTimes = new Map<string, number>();
  for (const node of profile.nodes) {
    const ms = self.get(node.id) ?? 0;
    if (ms === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    const fn = functionName || '(anonymous)';
    const w = where(url, lineNumber, root);
    const key = `${fn}@${w}`;
    const entry = fnTimes.get(key) ?? { fn, where: w, selfMs: 0 };
    entry.selfMs += ms;
    fnTimes.set(key, entry);
    const f = url ? fileOf(url, root) : fn.startsWith('(') ? fn : '(native / vm)';
    fileTimes.set(f, (fileTimes.get(f) ?? 0) + ms);
  }
  const busyMs = totalMs - idleMs;
  // inclusive time: self time of each node plus its subtree, summed per frame (not double counting recursion)
  const inclusiveOf = new Map<number, number>();
  const visit = (id: number): number => {
    const node = byId.get(id)!;
    let sum = self.get(id) ?? 0;
    for (const c of node.children ?? []) sum += visit(c);
    inclusiveOf.set(id, sum);
    return sum;
  };
  const rootNode = profile.nodes[0];
  if (rootNode) visit(rootNode.id);
  const inclusiveByFrame = new Map<string, { fn: string; where: string; totalMs: number }>();
  const walk = (id: number, onStack: Set<string>) => {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const w = where(url, lineNumber, root);
    const key = `${functionName}@${w}`;
    const own = url && !url.includes('/node_modules/') && !url.startsWith('node:') && functionName !== '';
    let next = onStack;
    if (own && !onStack.has(key)) {
      const e = inclusiveByFrame.get(key) ?? { fn: functionName, where: w, totalMs: 0 };
      e.totalMs += inclusiveOf.get(id) ?? 0;
      inclusiveByFrame.set(key, e);
      next = new Set(onStack).add(key);
    }
    for (const c of node.children ?? []) walk(c, next);
  };
  if (rootNode) walk(rootNode.id, new Set());
  const pct = (ms: number) => Math.round((ms / busyMs) * 1000) / 10;
  return {
    totalMs,
    busyMs,
    byFunction: [...fnTimes.values()]
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top)
      .map((e) => ({ ...e, selfMs: Math.round(e.selfMs), pct: pct(e.selfMs) })),
    byFile: [...fileTimes.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([file, ms]) => ({ file, selfMs: Math.round(ms), pct: pct(ms) })),
    inclusive: [...inclusiveByFrame.values()]
      .sort((a, b) => b.totalMs - a.totalMs)
      .slice(0, top)
      .map((e) => ({ ...e, totalMs: Math.round(e.totalMs), pct: pct(e.totalMs) })),
  };
}
