// `conclave store verify --data-dir D [--json]`: an offline check of a stopped node's store.
// Exit 0: no damage · 2: damaged, or not a store (one `error:` line) · 1: in use by a live process.
import type { Command } from 'commander';
import { EXIT } from '../errors.ts';
import type { DamagedRecord } from '../store/files.ts';
import type { VerifyReport } from '../store/verify.ts';

export function addStoreCommands(program: Command): void {
  const store = program.command('store').description("offline tools for a stopped node's store");
  store
    .command('verify')
    .description('check every record of a store (read-only) and report what it holds and what is damaged')
    .requiredOption('--data-dir <dir>', "the stopped node's data dir")
    .option('--json', 'machine-readable output on stdout')
    .action(async (flags: { dataDir: string; json?: boolean }) => {
      // loaded on demand: other commands need not load LMDB, nor the store's file helpers (child_process, crypto)
      const [{ verifyStore }, { describeDamage }] = await Promise.all([import('../store/verify.ts'), import('../store/files.ts')]);
      const report = await verifyStore(flags.dataDir);
      process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : `${formatVerify(report, describeDamage)}\n`);
      if (report.problem) {
        process.stderr.write(`error: ${report.problem}\n`);
        process.exitCode = EXIT.usage;
      }
    });
  store
    .command('forget-contact')
    .description('clear the join offer a blank node accepted from a cluster that will never add it, so that `init` is allowed again')
    .requiredOption('--data-dir <dir>', "the stopped node's data dir")
    .option('--json', 'machine-readable output on stdout')
    .action(async (flags: { dataDir: string; json?: boolean }) => {
      const { forgetContact } = await import('../store/forgetContact.ts');
      const r = await forgetContact(flags);
      const human = () =>
        r.forgot === null
          ? `${r.name} (store ${r.dataDir}) has no recorded contact: nothing to forget`
          : `forgot the contact of ${r.name} by cluster ${r.forgot.clusterId} (via ${r.forgot.by} at ${r.forgot.at}); start it again, then \`conclave init --node ${r.name}\` or add it to a cluster`;
      process.stdout.write(flags.json ? `${JSON.stringify(r)}\n` : `${human()}\n`);
    });
}

export function formatVerify(r: VerifyReport, describeDamage: (d: DamagedRecord) => string): string {
  const counts = Object.entries(r.dbs)
    .map(([db, c]) => `${db} ${c.records}`)
    .join(', ');
  const bytes = Object.values(r.dbs).reduce((n, c) => n + c.bytes, 0);
  const lines = [
    `store ${r.dataDir}: node ${r.name} (node id ${r.nodeId}), cluster ${r.clusterId ?? '(none yet)'}, generation ${r.generation}`,
    `  format ${r.formatVersion}${r.checksummed ? ' (checksummed records)' : ' (no checksums: the node upgrades it when it next opens the store)'}`,
    `  records: ${counts} (${bytes} bytes of values)`,
  ];
  for (const d of r.damaged) lines.push(`  damaged: ${describeDamage(d)}`);
  if (r.damagedCount > r.damaged.length) lines.push(`  … and ${r.damagedCount - r.damaged.length} more damaged records`);
  lines.push(r.ok ? `  checked in ${r.checkMs} ms: no damage found` : `  checked in ${r.checkMs} ms: ${r.damagedCount} damaged record(s)`);
  return lines.join('\n');
}
