// Reading a recording made with `--record FILE`: one JSON object per line, the header first, then
// frames as the live inspector pushed them. The page plays them back with a scrubber.
import { readFile, stat } from 'node:fs/promises';
import { conclaveError } from '../errors.ts';
import { type Frame, RECORDING_FORMAT, RECORDING_VERSION, type RecordingHeader } from './inspector.ts';

export const MAX_RECORDING_BYTES = 256 * 1024 * 1024;

export interface Recording {
  header: RecordingHeader;
  frames: Frame[];
}

export async function readRecording(file: string): Promise<Recording> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (err) {
    throw conclaveError('CONFIG', `cannot replay ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  if (size > MAX_RECORDING_BYTES) throw conclaveError('CONFIG', `cannot replay ${file}: ${size} bytes is over the ${MAX_RECORDING_BYTES}-byte limit`);
  const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim().length > 0);
  const parse = (line: string, n: number): unknown => {
    try {
      return JSON.parse(line);
    } catch {
      // the last line of a recording cut by a crash may be partial: tolerate only that one
      if (n === lines.length - 1) return null;
      throw conclaveError('CONFIG', `cannot replay ${file}: line ${n + 1} is not JSON`);
    }
  };
  const header = parse(lines[0] ?? '', 0) as Partial<RecordingHeader> | null;
  if (!header || header.format !== RECORDING_FORMAT) {
    throw conclaveError('CONFIG', `cannot replay ${file}: not a conclave inspector recording (record one with \`conclave inspect --record FILE\`)`);
  }
  if (typeof header.version !== 'number' || header.version > RECORDING_VERSION) {
    throw conclaveError('CONFIG', `cannot replay ${file}: recording format ${header.version} is newer than this build reads (${RECORDING_VERSION})`);
  }
  const frames: Frame[] = [];
  for (let i = 1; i < lines.length; i++) {
    const frame = parse(lines[i]!, i) as Frame | null;
    if (frame && typeof frame === 'object' && typeof frame.t === 'number' && (frame.kind === 'batch' || frame.kind === 'snapshot' || frame.kind === 'cluster')) frames.push(frame);
  }
  return { header: header as RecordingHeader, frames };
}
