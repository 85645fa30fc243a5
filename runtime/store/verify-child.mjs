// The store check that runs in a CHILD process: `node verify-child.mjs DATA_DIR`.
// Why a child: LMDB trusts its pages. A zeroed or random page can make it fail with MDB_CORRUPTED,
// or crash the process (SIGSEGV, SIGBUS, abort) when it follows a bad pointer. Walked here, a crash
// is a verdict for the parent, not the death of the node or of `conclave store verify`.
// Plain JavaScript on purpose: it starts in tens of milliseconds (a tsx child costs ~0.4 s or more).
// Prints ONE JSON line: what walkStore returns (walk.mjs), or { error } when LMDB refused to read.
import { createRequire } from 'node:module';
import { walkStore } from './walk.mjs';

// lmdb's CommonJS build (one file) rather than its ES modules (a graph of them): the same code and
// native binding, ≈15 ms sooner here
const lmdb = createRequire(import.meta.url)('lmdb');

let out;
try {
  out = walkStore(lmdb, process.argv[2]);
} catch (err) {
  out = { error: err instanceof Error ? err.message : String(err) };
}
process.stdout.write(`${JSON.stringify(out)}\n`);
