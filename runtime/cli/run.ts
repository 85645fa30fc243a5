// `conclave run`: one controller process until SIGINT/SIGTERM. A second signal forces exit; SIGHUP rereads the operator keys.
import { ConfigError, resolveRunConfig, type RunFlags } from '../config/config.ts';
import { codeOf, exitCodeFor } from '../errors.ts';
import { createLogger } from '../log/logger.ts';
import { checkBeforeOpen } from '../store/examine.ts';

export async function runCommand(flags: RunFlags & { record?: string }): Promise<void> {
  const config = resolveRunConfig(flags, process.env);
  if (flags.record && !config.inspect) throw new ConfigError('--record needs --inspect HOST:PORT (the recording is what that inspector receives)', { key: 'record' });
  if (config.inspect) await checkListen(config.inspect, config.inspectPublic);
  const logger = createLogger({ level: config.log.level });
  const log = logger.child({ node: config.name });
  // codeCache: whether this start compiled the CLI with the build's code cache (bin/runBundle.js; absent when started from the source)
  const codeCache = (globalThis as Record<symbol, unknown>)[Symbol.for('conclave.runCodeCache')];
  log.info({ dataDir: config.dataDir, nats: config.nats.servers, prefix: config.prefix, operatorKeys: config.operators?.keys.length ?? 0, codeCache }, 'starting controller');
  // the store's read-only checks (a child process walks every record) run while the controller's
  // modules load: ≈0.1 s of a start, done side by side (the store is still refused before it is opened)
  const checkedStore = checkBeforeOpen({ dataDir: config.dataDir, name: config.name, create: true, logger: log });
  checkedStore.catch(() => {}); // handled where the controller opens the store (its refusal ends the run)
  const { startController } = await import('../controller.ts');
  const controller = await startController({
    checkedStore,
    name: config.name,
    dataDir: config.dataDir,
    prefix: config.prefix,
    transport: { nats: { ...config.nats, name: `conclave-${config.name}` } },
    initFrom: config.initFrom,
    initialMembers: config.initialMembers,
    join: {
      cluster: config.join.cluster,
      // a member admits with it; a joining node proves with it
      secretFile: config.join.secretFile ?? config.joinSecretFile,
      maxVoters: config.join.maxVoters,
    },
    warnWhenLeaderlessForMs: config.warnWhenLeaderlessFor,
    raft: config.raft,
    mapSizeBytes: config.store.maxBytes,
    operators: config.operators,
    logger,
  });
  let inspector: Awaited<ReturnType<typeof import('../inspect/index.ts').startInspectorForController>> | null = null;
  if (config.inspect) {
    try {
      // the inspector's collector, HTTP server and charts are loaded only when asked for
      inspector = await (await import('../inspect/index.ts')).startInspectorForController(controller, { listen: config.inspect, record: flags.record, logger: controller.logFor('inspector'), public: config.inspectPublic });
    } catch (err) {
      // the inspector was asked for and cannot serve (e.g. the port is in use): stop, releasing the store
      await controller.stop();
      throw err;
    }
  }
  if (inspector) controller.logFor('run').info({ url: inspector.url }, `inspector serving at ${inspector.url}`);
  let metrics: Awaited<ReturnType<typeof import('../metrics.ts').startMetricsServer>> | null = null;
  if (config.metrics) {
    try {
      // prom-client is loaded only when metrics are asked for
      metrics = await (await import('../metrics.ts')).startMetricsServer(controller, { listen: config.metrics, logger: controller.logFor('metrics') });
    } catch (err) {
      await inspector?.stop();
      await controller.stop();
      throw err;
    }
    controller.logFor('run').info({ url: metrics.url }, `metrics served at ${metrics.url}`);
  }
  const status = controller.status();
  controller
    .logFor('run')
    .info({ phase: status.phase, admin: `${config.prefix}.node.${config.name}.admin` }, `controller ${config.name} is running (${status.phase})`);

  // SIGHUP: read the configuration again and put its operator keys in force (add or revoke an operator
  // without a restart; the rest of the configuration takes effect at the next start)
  const onReload = () => {
    try {
      controller.setOperators(resolveRunConfig(flags, process.env).operators);
    } catch (err) {
      log.error({ err }, `SIGHUP: operator keys not reloaded (${(err as Error).message}); the keys in force stay`);
    }
  };
  process.on('SIGHUP', onReload);

  let signals = 0;
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        log.warn({ signal }, 'second signal: forcing exit');
        process.exit(130);
      }
      log.info({ signal }, 'shutting down (send the signal again to force)');
      const stopInspector = Promise.all([inspector?.stop(), metrics?.stop()]);
      stopInspector.then(() => controller.stop()).then(resolve, (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exitCode = exitCodeFor(codeOf(err));
        resolve();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // a fatal phase ends the process with the error (also one reached before we subscribed)
    let ended = false;
    const onSnapshot = (s: ReturnType<typeof controller.actor.getSnapshot>) => {
      if (ended || s.value !== 'failed' || !s.context.error) return;
      ended = true;
      process.stderr.write(`error: ${s.context.error.message}\n`);
      process.exitCode = exitCodeFor(s.context.error.code);
      controller.stop().then(resolve, resolve);
    };
    controller.actor.subscribe(onSnapshot);
    onSnapshot(controller.actor.getSnapshot());
  });
  process.off('SIGHUP', onReload);
  // a fatal phase ends here too: nothing the run started may keep the process alive
  await metrics?.stop();
}

/**
 * `--inspect HOST:PORT` is checked before the store is opened: a port out of range, or an address
 * other than loopback without --inspect-public, is a usage error
 */
async function checkListen(listen: string, isPublic: boolean): Promise<void> {
  const { parseListen } = await import('../inspect/server.ts');
  const { bindRefusal } = await import('../inspect/hardening.ts');
  let parsed: { host: string; port: number };
  try {
    parsed = parseListen(listen);
  } catch (err) {
    throw new ConfigError(`--inspect ${listen}: ${(err as Error).message}`, { key: 'inspect' });
  }
  if (parsed.port < 1) throw new ConfigError(`--inspect ${listen}: port ${parsed.port} is out of range (1-65535)`, { key: 'inspect' });
  const refusal = bindRefusal(listen, parsed.host, isPublic);
  if (refusal !== null) throw new ConfigError(refusal, { key: 'inspectPublic' });
}
