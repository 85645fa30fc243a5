// One `conclave run --config FILE` child process, started the way an operator would start it
// (bin/conclave.js: the compiled build in dist/), with a bounded tail of its output and /proc figures.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trackChild } from './cleanup.ts';
import { benchOperator } from './operator.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/conclave.js');
const BUILT = join(ROOT, 'dist/cli/main.js');
const TAIL_CHARS = 64 * 1024;

/**
 * The environment every server process of the bench starts with (controllers, etcd, NATS), as a
 * service manager starts a service: PATH, HOME, TMPDIR, LANG and TZ from the bench's own, then what
 * the scenario sets — not the whole shell's. The difference that matters on these machines:
 * NODE_EXTRA_CA_CERTS (the system's 220 kB CA bundle), which node 20 parses at every start, ≈40 ms
 * of CPU before any JavaScript (≈60 ms with it, ≈20 without, for `node -e 0`), for controllers that
 * talk to NATS on loopback without TLS. A CLI command (A6) is run from the shell, with all of it.
 */
export const SERVICE_ENV_KEYS = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ'] as const;
let shellEnv = false;
/** servers start with the bench's whole environment instead (but NODE_OPTIONS): to measure what it costs */
export function useShellEnv(): void {
  shellEnv = true;
}
export function serviceEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  if (shellEnv) Object.assign(env, process.env, { NODE_OPTIONS: undefined });
  else for (const k of SERVICE_ENV_KEYS) if (process.env[k] !== undefined) env[k] = process.env[k];
  return { ...env, ...extra };
}

export interface RaftSettings {
  heartbeatMs: number;
  electionTimeoutMs: number;
  /** absent: the controller's default */
  snapshotEvery?: number;
}

export interface NodeSpec {
  name: string;
  dataDir: string;
  configPath: string;
  /** where it serves /metrics on 127.0.0.1 (the bench reads conclave_stage_seconds there) */
  metricsPort?: number;
}

export async function writeRunConfig(spec: NodeSpec, natsUrl: string, prefix: string, raft: RaftSettings): Promise<void> {
  const config = {
    name: spec.name,
    dataDir: spec.dataDir,
    prefix,
    nats: { servers: natsUrl },
    log: { level: 'info' },
    raft,
    operators: { keys: [benchOperator().publicKey] },
    ...(spec.metricsPort === undefined ? {} : { metrics: `127.0.0.1:${spec.metricsPort}` }),
  };
  await writeFile(spec.configPath, JSON.stringify(config, null, 2));
}

export interface MemoryFigures {
  /** peak resident set (VmHWM), bytes */
  peakRss: number;
  /** current resident set (VmRSS), bytes */
  rss: number;
  /** of which anonymous memory (the V8 heap, native allocations) */
  rssAnon: number;
  /** of which file-backed pages (binaries, shared libraries, the LMDB map) */
  rssFile: number;
}

export class ControllerProcess {
  readonly child: ChildProcess;
  readonly startedAt = performance.now();
  private tail = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly spec: NodeSpec,
    opts: { nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {},
  ) {
    if (!existsSync(BUILT)) throw new Error(`no build at ${BUILT}: run \`npm run build\` first (the bench runs the compiled controller, as installed)`);
    const env = serviceEnv(opts.env); // not the bench's NODE_OPTIONS either (e.g. --cpu-prof)
    this.child = spawn(process.execPath, [...(opts.nodeArgs ?? []), BIN, 'run', '--config', spec.configPath], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackChild(this.child);
    const keep = (d: Buffer) => {
      this.tail = (this.tail + d.toString('utf8')).slice(-TAIL_CHARS);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get name(): string {
    return this.spec.name;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  output(chars = 3000): string {
    return this.tail.slice(-chars);
  }

  /** the error and fatal log lines (pino level ≥ 50) still in the output tail, shortened */
  errorLines(max = 5): string[] {
    const lines: string[] = [];
    for (const line of this.tail.split('\n')) {
      if (!/"level":(50|60)/.test(line) && !line.startsWith('error:')) continue;
      try {
        const rec = JSON.parse(line) as { msg?: string; err?: { message?: string } };
        lines.push(`${this.name}: ${rec.msg ?? ''}${rec.err?.message ? `: ${rec.err.message}` : ''}`);
      } catch {
        lines.push(`${this.name}: ${line.slice(0, 300)}`);
      }
    }
    return lines.slice(-max);
  }

  /** wait until the output shows the pattern; fails early (with the output) if the process exits */
  async waitForOutput(pattern: RegExp, timeoutMs = 30_000): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (pattern.test(this.tail)) return performance.now();
      if (!this.running) throw new Error(`${this.name} exited (code ${this.child.exitCode}, signal ${this.child.signalCode}) before printing ${pattern}:\n${this.output()}`);
      if (performance.now() > deadline) throw new Error(`${this.name} did not print ${pattern} within ${timeoutMs} ms:\n${this.output()}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  memory(): MemoryFigures | null {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
      return { peakRss: kb('VmHWM'), rss: kb('VmRSS'), rssAnon: kb('RssAnon'), rssFile: kb('RssFile') };
    } catch {
      return null;
    }
  }

  /** SIGKILL (a crash); resolves when the process is gone */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (graceful shutdown), SIGKILL after graceMs; returns how it ended */
  async stop(graceMs = 5000): Promise<{ code: number | null; signal: NodeJS.Signals | null; forced: boolean }> {
    if (!this.running) return { ...(await this.exited), forced: false };
    this.child.kill('SIGTERM');
    let forced = false;
    const timer = setTimeout(() => {
      forced = true;
      this.child.kill('SIGKILL');
    }, graceMs);
    const result = await this.exited;
    clearTimeout(timer);
    return { ...result, forced };
  }
}
