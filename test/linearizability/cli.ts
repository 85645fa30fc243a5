// `npm run -s check -- FILE [--format jepsen|conclave] [--timeout-ms N] [--html OUT]`
// Prints `linearizable` (exit 0), `not linearizable` with the conflicting operations (exit 1), or
// `unknown` when the time bound was reached (exit 2). Unreadable input: one `error:` line, exit 2.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkHistory } from './checker.ts';
import { type Format, HistoryFormatError, parseHistory } from './formats.ts';
import { renderHtml, renderText } from './render.ts';

const USAGE = 'usage: npm run -s check -- FILE [--format jepsen|conclave] [--timeout-ms N] [--html OUT]';

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

function main(): void {
  let parsed: ReturnType<typeof parseArgs<{ options: { format: { type: 'string' }; 'timeout-ms': { type: 'string' }; html: { type: 'string' }; help: { type: 'boolean' } }; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ options: { format: { type: 'string' }, 'timeout-ms': { type: 'string' }, html: { type: 'string' }, help: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (err) {
    fail(`${(err as Error).message}; ${USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (positionals.length !== 1) fail(`give exactly one history file; ${USAGE}`);
  const file = positionals[0]!;
  const format = (values.format ?? (file.endsWith('.log') ? 'jepsen' : 'conclave')) as Format;
  if (format !== 'jepsen' && format !== 'conclave') fail(`--format must be jepsen or conclave, not ${JSON.stringify(values.format)}`);
  const timeoutMs = values['timeout-ms'] === undefined ? 60_000 : Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) fail(`--timeout-ms takes a positive whole number of milliseconds, not ${JSON.stringify(values['timeout-ms'])}`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    fail(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let operations: ReturnType<typeof parseHistory>;
  try {
    operations = parseHistory(text, format);
  } catch (err) {
    if (err instanceof HistoryFormatError) fail(`${file} is not a ${format} history: ${err.message}`);
    throw err;
  }
  const result = checkHistory(operations, { timeoutMs });
  process.stdout.write(renderText(result));
  if (values.html !== undefined) {
    writeFileSync(values.html, renderHtml(result));
    process.stdout.write(`rendering written to ${values.html}\n`);
  }
  process.exitCode = result.verdict === 'linearizable' ? 0 : result.verdict === 'not linearizable' ? 1 : 2;
}

main();
