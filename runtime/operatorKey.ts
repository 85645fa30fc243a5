// Operator keys: an Ed25519 key pair per operator. The private half stays in a PEM file
// (PKCS#8, mode 0600) that the CLI (`--operator-key FILE`, $CONCLAVE_OPERATOR_KEY) and the library
// (`operatorSigner(file)`, passed to adminCall) authenticate admin requests with; the public half
// (raw 32 bytes, base64url, as member keys are committed) goes into every member's `operators.keys`.
// The library's signer keeps an operator session with each node it talks to (runtime/wire/
// operatorSession.ts: one signed request opens it, then each request is MACed, far cheaper than a
// signature each); a one-shot CLI command signs its request or two instead (`sessions: false`).
// No zod here: a one-shot CLI command loads it.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from './errors.ts';
import type { AdminSigner } from './wire/adminAuth.ts';
import { OperatorSessions } from './wire/operatorSession.ts';
import { publicKeyText } from './wire/peerSignature.ts';

/** the environment variable that names the CLI's operator key file */
export const OPERATOR_KEY_ENV = 'CONCLAVE_OPERATOR_KEY';

/** make a key pair; write the private half to `out` (mode 0600, never over an existing file); the public half, as `operators.keys` takes it */
export function createOperatorKey(out: string): { file: string; publicKey: string } {
  const file = resolve(out);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  try {
    writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' ? 'the file exists (a key is never overwritten; remove it first or pick another path)' : (code ?? (err as Error).message);
    throw new ConfigError(`cannot write the operator key to ${file}: ${why}`, { key: 'out' });
  }
  return { file, publicKey: publicKeyText(publicKey) };
}

/**
 * The signer of the operator key in `file`, and its public key (the form `operators.keys` lists).
 * `sessions` (default true): keep an operator session per node and send requests in it; false: sign
 * every request (what a one-shot CLI command does: it sends one or two).
 */
export function operatorSigner(file: string, opts: { sessions?: boolean } = {}): AdminSigner & { publicKey: string } {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the operator key ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; create one with \`conclave operator keygen --out FILE\``, { key: 'operatorKey' });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch {
    throw new ConfigError(`${path} is not an operator key (a PEM private key as written by \`conclave operator keygen\`)`, { key: 'operatorKey' });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError(`${path} holds a ${key.asymmetricKeyType} key; an operator key is Ed25519 (made by \`conclave operator keygen\`)`, { key: 'operatorKey' });
  }
  const publicKey = publicKeyText(createPublicKey(key));
  return opts.sessions === false ? { key, publicKey } : { key, publicKey, sessions: new OperatorSessions(publicKey) };
}
