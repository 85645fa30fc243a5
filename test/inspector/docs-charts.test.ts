// The charts in the docs are the machines' own export: a chart that differs from its machine (the
// README's bootstrap chart once lacked isLegacyMember, JOINED/JOIN_FAILED and the join timeout)
// fails here, and `npm run docs:charts` regenerates it.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { CHART_DOCS, chartNames, renderChartBlocks, ROOT } from '../../scripts/docs-charts.ts';

for (const doc of CHART_DOCS) {
  it(`${doc}: every chart it shows equals the machine's export (npm run docs:charts)`, async () => {
    const text = await readFile(join(ROOT, doc), 'utf8');
    assert.ok(chartNames(text).includes('bootstrap'), `${doc} shows the bootstrap chart`);
    assert.equal(text, renderChartBlocks(text), `${doc} shows a chart that differs from its machine: run npm run docs:charts`);
  });
}

it('a chart block naming no machine is an error, not an empty chart', () => {
  assert.throws(() => renderChartBlocks('<!-- chart: nope -->\n<!-- /chart -->\n'), /names machine "nope"/);
});
