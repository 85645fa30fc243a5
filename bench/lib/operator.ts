// The bench's operator key: over NATS a controller takes no change from a client unless it comes from
// one of its operator keys, so the bench's controllers list this key's public half and its client
// sends every put with it, as the library does (operatorSigner: an operator session per node, one
// signed request to open it, then a MAC per request — the puts in flight travel up to 16 a request; that cost is part of every figure, as for a user).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOperatorKey, operatorSigner } from '../../runtime/operatorKey.ts';
import { trackDir } from './cleanup.ts';

let made: ReturnType<typeof operatorSigner> | undefined;

/** the bench run's operator (signer and public key), made on first use */
export function benchOperator(): ReturnType<typeof operatorSigner> {
  if (made) return made;
  const dir = mkdtempSync(join(tmpdir(), 'conclave-bench-operator-'));
  trackDir(dir);
  made = operatorSigner(createOperatorKey(join(dir, 'ops.key')).file);
  return made;
}
