// What a person reads when a history is not linearizable: the conflicting operations of each key
// on a time line (text for a terminal, HTML for a browser), and the longest order that worked.
import type { CheckResult, KeyResult } from './checker.ts';
import { describe, type Operation } from './history.ts';

const WIDTH = 48;

/** one row per operation: process, a bar from call to return (`?` to the end when unknown), what it did */
function bars(ops: readonly Operation[]): string[] {
  const finite = ops.flatMap((o) => (Number.isFinite(o.ret) ? [o.call, o.ret] : [o.call]));
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const col = (t: number) => (hi === lo ? 0 : Math.round(((t - lo) / (hi - lo)) * (WIDTH - 1)));
  const procWidth = Math.max(7, ...ops.map((o) => o.process.length));
  return ops.map((o) => {
    const a = col(o.call);
    const b = Number.isFinite(o.ret) ? col(o.ret) : WIDTH - 1;
    const cells = Array.from({ length: WIDTH }, (_, i) => (i < a || i > b ? ' ' : i === a ? '[' : i === b ? (Number.isFinite(o.ret) ? ']' : '?') : '-'));
    return `  ${o.process.padEnd(procWidth)} ${cells.join('')}  ${describe(o)}`;
  });
}

function keyText(k: KeyResult): string[] {
  const out = [`key ${JSON.stringify(k.key)}: ${k.verdict} (${k.operations} operations)`];
  if (k.verdict !== 'not linearizable') return out;
  const conflict = k.conflict ?? [];
  out.push(`  these ${conflict.length} operations cannot be ordered so that each sees the one before (time runs left to right, [call … return], ? = outcome unknown):`);
  out.push(...bars(conflict));
  const prefix = k.longestPrefix ?? [];
  if (prefix.length > 0) {
    out.push(`  the longest order found before a return left no choice (${prefix.length} operations):`);
    out.push(`    ${prefix.map(describe).join('  ·  ')}`);
  }
  return out;
}

export function renderText(result: CheckResult): string {
  const lines = [`${result.verdict} (${result.operations} operations, ${result.keys.length} key(s), ${result.elapsedMs.toFixed(0)} ms)`];
  for (const k of result.keys) if (k.verdict !== 'linearizable') lines.push(...keyText(k));
  if (result.verdict === 'unknown') lines.push('the time bound was reached before the search finished: run again with a larger --timeout-ms');
  return `${lines.join('\n')}\n`;
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** a self-contained page: per key, one row per conflicting operation, drawn as a bar on a shared time axis; `appendix`: more sections (a run's incidents) */
export function renderHtml(result: CheckResult, appendix = ''): string {
  const sections = result.keys
    .filter((k) => k.verdict === 'not linearizable')
    .map((k) => {
      const ops = k.conflict ?? [];
      const finite = ops.flatMap((o) => (Number.isFinite(o.ret) ? [o.call, o.ret] : [o.call]));
      const lo = Math.min(...finite);
      const span = Math.max(...finite) - lo || 1;
      const rows = ops
        .map((o) => {
          const left = ((o.call - lo) / span) * 100;
          const right = Number.isFinite(o.ret) ? ((o.ret - lo) / span) * 100 : 100;
          const cls = Number.isFinite(o.ret) ? 'op' : 'op unknown';
          return `<div class="row"><span class="proc">${escapeHtml(o.process)}</span><span class="lane"><span class="${cls}" style="left:${left.toFixed(2)}%;width:${Math.max(0.5, right - left).toFixed(2)}%" title="${escapeHtml(describe(o))}"></span></span><span class="what">${escapeHtml(describe(o))}</span></div>`;
        })
        .join('\n');
      return `<section><h2>key ${escapeHtml(JSON.stringify(k.key))}: not linearizable</h2><p>${ops.length} operations that cannot be ordered so that each sees the one before. Bars run from call to return; a dashed bar's outcome is unknown.</p>\n${rows}</section>`;
    })
    .join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Linearizability: ${escapeHtml(result.verdict)}</title><style>
body{font:14px system-ui,sans-serif;margin:2em}.row{display:flex;align-items:center;gap:1em;margin:2px 0}
.proc{width:6em;font-family:monospace}.lane{position:relative;flex:0 0 40%;height:14px;background:#f3f3f3}
.op{position:absolute;top:2px;height:10px;background:#3566c4}.op.unknown{background:none;border:1px dashed #3566c4}
.what{font-family:monospace}table{border-collapse:collapse;font-family:monospace}td,th{padding:1px 8px;text-align:left}
tr.failed{color:#888}tr.unknown{color:#a60}tr.lost{background:#fdd;font-weight:bold}</style></head><body><h1>${escapeHtml(result.verdict)}</h1><p>${result.operations} operations, ${result.keys.length} key(s), checked in ${result.elapsedMs.toFixed(0)} ms.</p>
${sections}
${appendix}</body></html>\n`;
}
