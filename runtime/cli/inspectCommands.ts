// What `conclave inspect` and `conclave machines export` do, loaded only when one of them runs (the
// inspector, its HTTP server, elkjs and every machine are not for the other commands).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commonFromEnv, type NatsFlags } from '../config/config.ts';
import { conclaveError } from '../errors.ts';
import { createLogger, type LogLevel } from '../log/logger.ts';
import { Inspector } from '../inspect/inspector.ts';
import { toDot, toMermaid } from '../inspect/diagrams.ts';
import { allMachineDefinitions, MACHINES, type MachineDef, machineDefinition } from '../inspect/machines.ts';
import { readRecording } from '../inspect/replay.ts';
import { checkListen, startInspectorServer } from '../inspect/server.ts';
import { connectNats } from '../transport/index.ts';

export interface InspectFlags extends NatsFlags {
  listen: string;
  public?: boolean;
  record?: string;
  replay?: string;
  prefix?: string;
  operatorKey?: string;
}

const out = (line: string) => process.stdout.write(`${line}\n`);

/** Resolve when SIGINT or SIGTERM arrives (a second one forces exit). */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    let signals = 0;
    const onSignal = () => {
      if (++signals > 1) process.exit(130);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export async function inspectCommand(flags: InspectFlags): Promise<void> {
  const logger = createLogger({ level: (process.env.CONCLAVE_LOG_LEVEL as LogLevel | undefined) ?? 'warn' });
  checkListen(flags.listen, flags.public); // before anything connects
  if (flags.replay) {
    if (flags.record) throw conclaveError('USAGE', '--record and --replay cannot be used together');
    const recording = await readRecording(flags.replay);
    const server = await startInspectorServer({ listen: flags.listen, recording, replayFile: flags.replay, logger, public: flags.public });
    out(`inspector replaying ${flags.replay} (${recording.frames.length} frames) on ${server.url}`);
    await untilSignal();
    await server.close();
    return;
  }
  const common = commonFromEnv(process.env, flags);
  // read before connecting: a missing or bad key file is one `error:` line, exit 2
  const keyFile = flags.operatorKey ?? process.env.CONCLAVE_OPERATOR_KEY;
  const signer = keyFile ? (await import('../operatorKey.ts')).operatorSigner(keyFile) : undefined;
  const bus = await connectNats({ ...common.nats, name: 'conclave-inspector' });
  const inspector = new Inspector({ bus, prefix: common.prefix, logger, record: flags.record, signer });
  let server: Awaited<ReturnType<typeof startInspectorServer>>;
  try {
    await inspector.start();
    server = await startInspectorServer({ listen: flags.listen, inspector, logger, public: flags.public });
  } catch (err) {
    await inspector.stop();
    await bus.close();
    throw err;
  }
  out(`inspector serving on ${server.url} (prefix ${common.prefix}${flags.record ? `, recording to ${flags.record}` : ''})`);
  await untilSignal();
  await server.close();
  await inspector.stop();
  await bus.close();
}

const EXTENSIONS = { mermaid: 'mmd', dot: 'dot', json: 'json' } as const;
type DiagramFormat = keyof typeof EXTENSIONS;

export async function exportCommand(name: string | undefined, flags: { format: DiagramFormat; out?: string }): Promise<void> {
  let defs = allMachineDefinitions();
  if (name !== undefined) {
    const entry = MACHINES.find((m) => m.name === name || m.machine.id === name);
    if (!entry) throw conclaveError('USAGE', `no machine named ${JSON.stringify(name)}; known: ${MACHINES.map((m) => m.name).join(', ')}`);
    defs = [machineDefinition(entry.machine, entry.name, entry.title)];
  }
  const render = (def: MachineDef) => (flags.format === 'json' ? `${JSON.stringify(def, null, 2)}\n` : flags.format === 'dot' ? toDot(def) : toMermaid(def));
  if (flags.out !== undefined) {
    // one file per machine: each is one input a renderer takes as it is
    try {
      await mkdir(flags.out, { recursive: true });
      for (const def of defs) {
        const file = join(flags.out, `${def.name}.${EXTENSIONS[flags.format]}`);
        await writeFile(file, render(def));
        out(file);
      }
    } catch (err) {
      throw conclaveError('USAGE', `cannot write the diagrams to ${flags.out}: ${(err as Error).message}; pick a directory you can write with --out DIR`);
    }
    return;
  }
  if (flags.format === 'json') {
    out(JSON.stringify(name !== undefined ? defs[0] : { machines: defs }, null, 2));
    return;
  }
  // several diagrams on stdout are one after another, separated by a blank line: neither Mermaid nor
  // Graphviz takes that as one input (pass NAME for one diagram, or --out DIR for one file each)
  process.stdout.write(defs.map(render).join('\n'));
}
