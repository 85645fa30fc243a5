// The NATS connection flags of every command that connects (the client commands, `run`, `inspect`,
// `demo --nats`): servers and credentials, each also taken from the environment (config/common.ts).
import type { Command } from 'commander';

export function addNatsOptions(cmd: Command, serversHelp = 'NATS server URLs, comma-separated (default $NATS_URL, else nats://127.0.0.1:4222)'): Command {
  return cmd
    .option('--nats <urls>', serversHelp)
    .option('--nats-user <user>', 'NATS user (default $NATS_USER); its password from --nats-password or $NATS_PASSWORD')
    .option('--nats-password <password>', 'NATS password (default $NATS_PASSWORD; prefer the variable: a flag shows in ps)')
    .option('--nats-token <token>', 'NATS token (default $NATS_TOKEN)')
    .option('--nats-nkey <file>', 'file holding an nkey seed (default $NATS_NKEY)')
    .option('--nats-creds <file>', 'NATS .creds file, JWT and seed (default $NATS_CREDS)')
    .option('--nats-tls-ca <file>', 'CA certificate to trust for the server (default $NATS_CA)')
    .option('--nats-tls-cert <file>', 'client certificate (default $NATS_CERT)')
    .option('--nats-tls-key <file>', 'client certificate key (default $NATS_KEY)')
    .option('--nats-inbox-prefix <prefix>', 'subject prefix of reply inboxes, default _INBOX (default $NATS_INBOX_PREFIX)');
}
