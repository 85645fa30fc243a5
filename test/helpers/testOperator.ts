// The operator key of this test process: over NATS a member takes no change from a client without
// one (runtime/wire/operatorAuth.ts), so every CLI child and every `conclave run` a test starts is
// given this key pair through the environment (baseEnv: CONCLAVE_OPERATOR_KEY signs,
// CONCLAVE_OPERATORS lists its public key), and library calls sign with `testOperator().signer`.
// Made once per process, in a temporary folder removed at exit.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOperatorKey, operatorSigner } from '../../runtime/operatorKey.ts';

export interface TestOperator {
  /** the private key file (what --operator-key takes) */
  keyFile: string;
  /** a file holding the public key (what --operators takes) */
  keysFile: string;
  publicKey: string;
  signer: ReturnType<typeof operatorSigner>;
  /** the environment that gives both to a child process */
  env: { CONCLAVE_OPERATOR_KEY: string; CONCLAVE_OPERATORS: string };
}

let made: TestOperator | undefined;

export function testOperator(): TestOperator {
  if (made) return made;
  const dir = mkdtempSync(join(tmpdir(), 'conclave-test-operator-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const { file: keyFile, publicKey } = createOperatorKey(join(dir, 'ops.key'));
  const keysFile = join(dir, 'ops.pub');
  writeFileSync(keysFile, `${publicKey}\n`);
  made = { keyFile, keysFile, publicKey, signer: operatorSigner(keyFile), env: { CONCLAVE_OPERATOR_KEY: keyFile, CONCLAVE_OPERATORS: keysFile } };
  return made;
}
