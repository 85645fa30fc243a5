// Test helper: what every `conclave demo` run must show, whatever its transport — the tour's output
// (cluster formed, writes, the intruder refused naming both ids) and the inspector's /api/cluster.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { baseEnv, CliProcess, waitUntil } from './cli.ts';
import { launchChromium, openWatchedPage } from './chromium.ts';

export const UUID7 = '[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}';

export interface ClusterView {
  nodes: Array<{ name: string; nodeId: string; role?: string; clusterId?: string | null; phase?: string }>;
}

/** wait for the tour to finish, check what it printed and what its inspector serves */
export async function checkDemoTour(demo: CliProcess): Promise<{ clusterId: string; url: string; view: ClusterView }> {
  await demo.waitForOutput(/press Ctrl-C to stop/, 60_000);
  const clusterId = new RegExp(`cluster id (${UUID7})`).exec(demo.stdout)?.[1];
  assert.ok(clusterId, `the demo prints the new cluster id:\n${demo.output()}`);
  assert.match(demo.stdout, /ctrl2: added in \d+ ms/);
  assert.match(demo.stdout, /ctrl3: added in \d+ ms/);
  assert.match(demo.stdout, /kv get greeting via ctrl3 → "hello from the demo"/);
  const foreignId = new RegExp(`intruder belongs to cluster (${UUID7})`).exec(demo.stdout)?.[1];
  assert.ok(foreignId && foreignId !== clusterId, demo.output());
  assert.match(demo.stdout, new RegExp(`refused at both ends — join refused: intruder belongs to cluster ${foreignId} but ctrl1 belongs to cluster ${clusterId}`));

  const url = /inspector: (http:\/\/\S+)/.exec(demo.stdout)?.[1];
  assert.ok(url, `the demo prints the inspector URL:\n${demo.output()}`);
  let view: ClusterView = { nodes: [] };
  await waitUntil(
    async () => {
      view = (await (await fetch(new URL('/api/cluster', url))).json()) as ClusterView;
      const ours = view.nodes.filter((n) => n.clusterId === clusterId);
      return ours.length === 3 && ours.filter((n) => n.role === 'leader').length === 1;
    },
    { what: 'three nodes of one cluster with one leader in /api/cluster', timeoutMs: 15_000, context: () => JSON.stringify(view) },
  );
  return { clusterId, url, view };
}

/**
 * Inside a describe: Chromium launched before the tests; `open()` starts `conclave demo` on the
 * in-process bus, checks its tour and opens its page (see openWatchedPage); after the tests the demo
 * is stopped and the browser closed.
 */
export function demoInChromium(): { open(): Promise<{ url: string; page: Page; errors: string[] }> } {
  let browser: Browser | undefined;
  let demo: CliProcess | undefined;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await demo?.kill('SIGINT');
  });
  return {
    open: async () => {
      demo = new CliProcess(['demo', '--inspect', '127.0.0.1:0'], { env: baseEnv({ NATS_URL: undefined }) });
      const { url } = await checkDemoTour(demo);
      return { url, ...(await openWatchedPage(browser!, url)) };
    },
  };
}
