// Stack traces of the commands that keep running name the TypeScript line, as with
// `--enable-source-maps`, but a source map is read only when a stack through its module is printed.
// Node 20 with source maps on reads and parses every loaded module's map at import (≈10% of
// `conclave run`'s start-up and ≈8 MiB kept; measured in README, "The CLI's start-up"). Node's own
// SourceMap class does the mapping; frames outside the build are left as V8 wrote them.
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The name dist/cli/run.cjs is compiled under (runBundle.js): V8 keeps the name a script had when its
 * code cache was made, so the name is the same wherever the package is; its frames map to that file.
 */
export const RUN_BUNDLE_NAME = 'conclave/dist/cli/run.cjs';

/** @param {URL} dist the build folder whose modules have `.map` files beside them */
export function installLazySourceMaps(dist) {
  /** @type {Map<string, SourceMap | null>} */
  const maps = new Map();
  const mapOf = (/** @type {string} */ url) => {
    if (!maps.has(url)) {
      let map = null;
      try {
        map = new SourceMap(JSON.parse(readFileSync(`${fileURLToPath(url)}.map`, 'utf8')));
      } catch {
        // no map, or unreadable: the frame stays as it is
      }
      maps.set(url, map);
    }
    return maps.get(url) ?? null;
  };
  const mapFrame = (/** @type {NodeJS.CallSite} */ frame) => {
    const text = frame.toString();
    const name = frame.getFileName();
    const url = name === RUN_BUNDLE_NAME ? new URL('cli/run.cjs', dist).href : name;
    const line = frame.getLineNumber();
    const column = frame.getColumnNumber();
    if (!url?.startsWith(dist.href) || line === null || column === null) return text;
    const entry = mapOf(url)?.findEntry(line - 1, column - 1);
    if (!entry?.originalSource) return text;
    const source = fileURLToPath(new URL(entry.originalSource, url));
    return text.replace(`${name}:${line}:${column}`, `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`);
  };
  Error.prepareStackTrace = (err, frames) => {
    let head;
    try {
      head = Error.prototype.toString.call(err);
    } catch {
      head = 'Error';
    }
    return [head, ...frames.map((f) => `    at ${mapFrame(f)}`)].join('\n');
  };
}
