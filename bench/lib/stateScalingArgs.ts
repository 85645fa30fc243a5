// The command-line options of the state-scaling bench (bench/lib/stateScaling.ts), shared by
// `npm run bench -- --state-scaling` and bench/scaling.ts. Loads nothing of the runtime, so that a
// usage error is reported even when the runtime does not load.

export class UsageError extends Error {}

export function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} ${value}: must be a positive whole number`);
  return n;
}

export interface StateScalingOptions {
  keyCounts?: number[];
  catchUpMb?: number;
  catchUpValueBytes?: number;
  cpuProfile?: boolean;
}

export function stateScalingOptions(values: { keys?: string; 'catchup-mb'?: string; 'catchup-value-bytes'?: string; 'catchup-cpu-prof'?: boolean }): StateScalingOptions {
  const opts: StateScalingOptions = {};
  if (values.keys !== undefined) opts.keyCounts = values.keys.split(',').map((k) => positiveInt('keys', k.trim())!);
  const mb = positiveInt('catchup-mb', values['catchup-mb']);
  if (mb !== undefined) opts.catchUpMb = mb;
  const valueBytes = positiveInt('catchup-value-bytes', values['catchup-value-bytes']);
  if (valueBytes !== undefined) opts.catchUpValueBytes = valueBytes;
  if (values['catchup-cpu-prof']) opts.cpuProfile = true;
  return opts;
}
