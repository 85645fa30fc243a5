// The CLI fuzz's driver (test/fuzz/cli.test.ts): one process that runs `conclave` command lines
// in-process, one per line of JSON on stdin, and answers each with {code, stdout, stderr} as a line
// on stdout — the CLI's own output captured, so that nothing else shares this process's stdout.
import { createInterface } from 'node:readline';

process.env.CONCLAVE_CLI_IN_PROCESS = '1';
const { main } = await import('../../runtime/cli/main.ts');

const writes = { stdout: process.stdout.write.bind(process.stdout), stderr: process.stderr.write.bind(process.stderr) };
for await (const line of createInterface({ input: process.stdin })) {
  const argv = JSON.parse(line) as string[];
  const out = { stdout: '', stderr: '' };
  const capture = (stream: 'stdout' | 'stderr') =>
    ((chunk: string | Uint8Array) => {
      out[stream] += String(chunk);
      return true;
    }) as typeof process.stdout.write;
  process.stdout.write = capture('stdout');
  process.stderr.write = capture('stderr');
  process.exitCode = undefined;
  let code: number;
  try {
    code = await main(argv);
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
    process.exitCode = undefined;
  }
  writes.stdout(`${JSON.stringify({ code, ...out })}\n`);
}
