// `npm run docs:charts`: the charts shown in the docs are generated from the machines. Each chart
// sits between `<!-- chart: NAME … -->` and `<!-- /chart -->`; this rewrites what is between them
// with `conclave machines export NAME` (Mermaid). `--check` writes nothing and exits 1 when a file
// differs (test/inspector/docs-charts.test.ts runs the same check).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { toMermaid } from '../runtime/inspect/diagrams.ts';
import { allMachineDefinitions } from '../runtime/inspect/machines.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** the docs that show charts */
export const CHART_DOCS = ['README.md', 'docs/inspector.md'];

const BLOCK = /(<!-- chart: ([a-z]+)[^>]*-->\n)([\s\S]*?)(<!-- \/chart -->)/g;

/** The text with every chart block regenerated from its machine; throws on an unknown name. */
export function renderChartBlocks(text: string): string {
  const defs = new Map(allMachineDefinitions().map((d) => [d.name, d]));
  return text.replace(BLOCK, (_all, open: string, name: string, _old: string, close: string) => {
    const def = defs.get(name);
    if (!def) throw new Error(`chart block names machine "${name}"; known: ${[...defs.keys()].join(', ')}`);
    return `${open}\`\`\`mermaid\n${toMermaid(def)}\`\`\`\n${close}`;
  });
}

/** The chart names a doc shows. */
export function chartNames(text: string): string[] {
  return [...text.matchAll(BLOCK)].map((m) => m[2]!);
}

async function main(check: boolean): Promise<number> {
  let stale = 0;
  for (const doc of CHART_DOCS) {
    const file = join(ROOT, doc);
    const text = await readFile(file, 'utf8');
    const fresh = renderChartBlocks(text);
    if (fresh === text) continue;
    stale++;
    if (check) process.stderr.write(`error: ${doc} shows a chart that differs from its machine; run npm run docs:charts\n`);
    else {
      await writeFile(file, fresh);
      process.stdout.write(`${doc}: charts regenerated (${chartNames(text).join(', ')})\n`);
    }
  }
  return check && stale ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv.includes('--check'));
}
