// Test helper: the previous release of Conclave, installed from its packed tarball
// (test/data/releases/conclave-<version>.tgz, made by scripts/pack-release.sh from the release's tag).
// Its dependencies are the versions this checkout installs (the same ones, checked below), so no
// network is needed: the package's node_modules is a link to this checkout's.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './cli.ts';

export const PREVIOUS_RELEASE = '0.1.0';

export interface InstalledRelease {
  version: string;
  /** the package's root */
  dir: string;
  /** its CLI's TypeScript entry (run it with TsProcess, or runProgram through tsx) */
  main: string;
  remove(): Promise<void>;
}

export async function installRelease(version = PREVIOUS_RELEASE): Promise<InstalledRelease> {
  const tarball = join(ROOT, 'test', 'data', 'releases', `conclave-${version}.tgz`);
  if (!existsSync(tarball)) throw new Error(`${tarball} is missing: make it with scripts/pack-release.sh v${version}`);
  const parent = await mkdtemp(join(tmpdir(), `conclave-release-${version}-`));
  execFileSync('tar', ['-xzf', tarball, '-C', parent]);
  const dir = join(parent, 'package');
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
  if (pkg.version !== version) throw new Error(`${tarball} holds version ${pkg.version}, not ${version}`);
  for (const dep of Object.keys(pkg.dependencies)) {
    if (!existsSync(join(ROOT, 'node_modules', dep, 'package.json'))) throw new Error(`release ${version} needs ${dep}, which this checkout does not install`);
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return { version, dir, main: join(dir, 'runtime', 'cli', 'main.ts'), remove: () => rm(parent, { recursive: true, force: true }) };
}
