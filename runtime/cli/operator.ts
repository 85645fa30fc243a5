// `conclave operator keygen|pubkey`: operator keys (runtime/operatorKey.ts). Offline: no NATS.
import type { Command } from 'commander';

export function addOperatorCommands(program: Command): void {
  const operator = program.command('operator').description('operator keys: members with "operators.keys" take changes only when signed by one');
  operator
    .command('keygen')
    .description('make an operator key pair: the private key to FILE (mode 0600, never over an existing file), its public key on stdout (for the members\' "operators.keys", or "operators.readKeys" for a read-only key)')
    .requiredOption('--out <file>', 'where to write the private key (PEM); the CLI signs with it given --operator-key FILE or $CONCLAVE_OPERATOR_KEY')
    .option('--json', 'machine-readable output on stdout')
    .action(async (flags: { out: string; json?: boolean }) => {
      const { createOperatorKey } = await import('../operatorKey.ts');
      const made = createOperatorKey(flags.out);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(made)}\n`);
        return;
      }
      process.stdout.write(`${made.publicKey}\n`);
      process.stderr.write(
        `wrote the operator key to ${made.file} (keep it secret); add its public key to every member's config, "operators": {"keys": ["${made.publicKey}"]}, send each running member SIGHUP (it rereads its config; no restart), and sign with --operator-key ${made.file}\n`,
      );
    });
  operator
    .command('pubkey')
    .description('print the public key of an operator key file')
    .requiredOption('--key <file>', 'the private key written by `conclave operator keygen`')
    .action(async (flags: { key: string }) => {
      const { operatorSigner } = await import('../operatorKey.ts');
      process.stdout.write(`${operatorSigner(flags.key).publicKey}\n`);
    });
}
