// `conclave inspect` (the live inspector for every node on the bus, or a recording played back)
// and `conclave machines export` (the statecharts as Mermaid, DOT or JSON). What they do is in
// inspectCommands.ts, imported when one of them runs: the other commands start without it.
import { type Command, Option } from 'commander';
import type { InspectFlags } from './inspectCommands.ts';
import { addNatsOptions } from './natsFlags.ts';

/** where `conclave inspect` serves by default */
export const DEFAULT_INSPECT = '127.0.0.1:7420';

export function addInspectCommands(program: Command): void {
  addNatsOptions(
    program
      .command('inspect')
      .description('serve the live inspector for every node on the bus (or replay a recording)')
      .option('--listen <host:port>', 'where the inspector serves', DEFAULT_INSPECT)
      .option('--public', 'let --listen be an address other than loopback (it shows ids, terms and members to whoever reaches it)')
      .option('--record <file>', 'write the inspection stream to FILE (NDJSON) for --replay')
      .option('--replay <file>', 'play a recording back with a scrubber instead of connecting to the bus')
      .option('--prefix <prefix>', 'subject prefix (default $CONCLAVE_PREFIX, else conclave)')
      .option('--operator-key <file>', "read-only or operator key that signs the inspector's status requests, needed when the members say \"reads\": \"signed\" (default $CONCLAVE_OPERATOR_KEY)"),
  ).action(async (flags: InspectFlags) => {
    const { inspectCommand } = await import('./inspectCommands.ts');
    await inspectCommand(flags);
  });

  const machines = program.command('machines').description("the controller's statecharts");
  machines
    .command('export')
    .description(
      'print a machine as a diagram; without NAME every machine, one diagram after another (not one input for a renderer: use --out DIR for one file per machine)',
    )
    .argument('[name]', 'bootstrap, membership, join or raft (default: all; an unknown name lists the known ones)')
    .addOption(new Option('--format <format>', 'diagram format').choices(['mermaid', 'dot', 'json']).default('mermaid'))
    .option('--out <dir>', 'write one file per machine into DIR (NAME.mmd, NAME.dot or NAME.json) and print their paths')
    .action(async (name: string | undefined, flags: { format: 'mermaid' | 'dot' | 'json'; out?: string }) => {
      const { exportCommand } = await import('./inspectCommands.ts');
      await exportCommand(name, flags);
    });
}
