// What `conclave inspect` and `conclave machines export` do, loaded only when one of them runs (the
// inspector, its HTTP server, elkjs and every machine are not for the other commands).
import { commonFromEnv } from '../config/config.ts';
import { conclaveError } from '../errors.ts';
import { createLogger, type LogLevel } from '../log/logger.ts';
import { Inspector } from '../inspect/inspector.ts';
import { allMachineDefinitions, MACHINES, machineDefinition, toDot, toMermaid } from '../inspect/machines.ts';
import { readRecording } from '../inspect/replay.ts';
import { startInspectorServer } from '../inspect/server.ts';
import { connectNats } from '../transport/index.ts';

export interface InspectFlags {
  listen: string;
  record?: string;
  replay?: string;
  nats?: string;
  prefix?: string;
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
  if (flags.replay) {
    if (flags.record) throw conclaveError('USAGE', '--record and --replay cannot be used together');
    const recording = await readRecording(flags.replay);
    const server = await startInspectorServer({ listen: flags.listen, recording, replayFile: flags.replay, logger });
    out(`inspector replaying ${flags.replay} (${recording.frames.length} frames) on ${server.url}`);
    await untilSignal();
    await server.close();
    return;
  }
  const common = commonFromEnv(process.env, flags);
  const bus = await connectNats({ ...common.nats, name: 'conclave-inspector' });
  const inspector = new Inspector({ bus, prefix: common.prefix, logger, record: flags.record });
  let server: Awaited<ReturnType<typeof startInspectorServer>>;
  try {
    await inspector.start();
    server = await startInspectorServer({ listen: flags.listen, inspector, logger });
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

export function exportCommand(name: string | undefined, flags: { format: 'mermaid' | 'dot' | 'json' }): void {
  let defs = allMachineDefinitions();
  if (name !== undefined) {
    const entry = MACHINES.find((m) => m.name === name || m.machine.id === name);
    if (!entry) throw conclaveError('USAGE', `no machine named ${JSON.stringify(name)}; known: ${MACHINES.map((m) => m.name).join(', ')}`);
    defs = [machineDefinition(entry.machine, entry.name, entry.title)];
  }
  if (flags.format === 'json') {
    out(JSON.stringify(name !== undefined ? defs[0] : { machines: defs }, null, 2));
    return;
  }
  const render = flags.format === 'dot' ? toDot : toMermaid;
  // several diagrams are separated by one blank line; pass NAME for exactly one
  process.stdout.write(defs.map(render).join('\n'));
}
