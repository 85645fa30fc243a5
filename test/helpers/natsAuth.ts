// Credentials for nats-servers that require them, made here for the tests: an nkey, a .creds file
// in operator mode (operator, account and user JWTs signed with nkeys, as `nsc` would make them)
// and a TLS CA with a server and a client certificate (openssl).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nkeys } from 'nats';

type KeyPair = ReturnType<typeof nkeys.createUser>;

const b64url = (data: string | Uint8Array) => Buffer.from(data).toString('base64url');
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** a NATS JWT (v2): claims issued by `issuer` about `subject`, with the jti as nats-io/jwt computes it */
function jwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const claims: Record<string, unknown> = { jti: '', iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), name, sub: subject, nats: { ...nats, version: 2 } };
  const digest = createHash('sha512-256').update(JSON.stringify(claims)).digest();
  claims.jti = base32(digest);
  const signingInput = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))}.${b64url(JSON.stringify(claims))}`;
  return `${signingInput}.${b64url(issuer.sign(new TextEncoder().encode(signingInput)))}`;
}

function base32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/** an nkey user: the seed file to give the client, the public key to list in the server's config */
export function nkeyUser(dir: string): { seedFile: string; publicKey: string } {
  const user = nkeys.createUser();
  const seedFile = join(dir, 'user.nk');
  writeFileSync(seedFile, `${text(user.getSeed())}\n`, { mode: 0o600 });
  return { seedFile, publicKey: user.getPublicKey() };
}

/** operator mode: the server configuration (memory resolver) and a .creds file for one user */
export function operatorMode(dir: string): { serverConfig: string; credsFile: string } {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const user = nkeys.createUser();
  const operatorJwt = jwt(operator, operator.getPublicKey(), 'test-operator', { type: 'operator' });
  const unlimited = { subs: -1, data: -1, payload: -1 };
  const accountJwt = jwt(operator, account.getPublicKey(), 'test-account', {
    type: 'account',
    limits: { ...unlimited, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 },
    default_permissions: { pub: {}, sub: {} },
  });
  const userJwt = jwt(account, user.getPublicKey(), 'test-user', { type: 'user', pub: {}, sub: {}, ...unlimited });
  writeFileSync(join(dir, 'operator.jwt'), operatorJwt);
  const credsFile = join(dir, 'user.creds');
  writeFileSync(
    credsFile,
    `-----BEGIN NATS USER JWT-----\n${userJwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${text(user.getSeed())}\n------END USER NKEY SEED------\n`,
    { mode: 0o600 },
  );
  const serverConfig = `operator: "${join(dir, 'operator.jwt')}"\nresolver: MEMORY\nresolver_preload: {\n  ${account.getPublicKey()}: "${accountJwt}"\n}\n`;
  return { serverConfig, credsFile };
}

/** a CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA (PEM files in `dir`) */
export function tlsFiles(dir: string): { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string } {
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca-key.pem'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=conclave-test-ca');
  for (const [who, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    writeFileSync(f(`${who}.ext`), `${ext}\n`);
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${who}-key.pem`), '-out', f(`${who}.csr`), '-subj', `/CN=conclave-test-${who}`);
    openssl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-out', f(`${who}.pem`), '-days', '2', '-extfile', f(`${who}.ext`));
  }
  return { ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server-key.pem'), clientCert: f('client.pem'), clientKey: f('client-key.pem') };
}
