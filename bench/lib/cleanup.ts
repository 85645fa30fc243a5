// Everything the bench starts is registered here, so it is stopped on success, on failure, on an
// uncaught error and on Ctrl-C: child processes are SIGKILLed, temporary folders removed.
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
const asyncCleanups: Array<() => Promise<void>> = [];
let hooked = false;

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** synchronous last resort: what an 'exit' handler or a signal handler can still do */
export function reapNow(): void {
  for (const child of children) if (alive(child)) child.kill('SIGKILL');
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', reapNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      reapNow();
      process.stderr.write(`error: interrupted by ${signal}; every process the bench started was stopped\n`);
      process.exit(130);
    });
  }
}

export function trackChild(child: ChildProcess): void {
  hook();
  children.add(child);
  child.once('exit', () => children.delete(child));
}

export function trackDir(dir: string): void {
  hook();
  dirs.add(dir);
}

/** async cleanups (in-process controllers, bus connections), run last-registered first */
export function onCleanup(fn: () => Promise<void>): void {
  hook();
  asyncCleanups.push(fn);
}

export async function cleanupAll(): Promise<void> {
  while (asyncCleanups.length > 0) {
    const fn = asyncCleanups.pop()!;
    try {
      await withTimeout(fn(), 5000);
    } catch {
      // best effort: the synchronous reap below still stops every process
    }
  }
  reapNow();
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]).finally(() => clearTimeout(timer));
}
