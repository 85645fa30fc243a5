// Logs a repeated problem a bounded number of times per interval per key, with how many were
// suppressed, so a flood of malformed or hostile messages cannot flood the log. Keys must come from
// a bounded set (a reason, a message type), never from what a sender chose; a `variant` (e.g. the
// sender's name) lets the first few distinct senders of one reason each get their line per interval.
import type { Logger } from './logger.ts';

/** distinct variants logged per key and interval; the rest are counted */
const VARIANTS_PER_INTERVAL = 4;

interface Window {
  at: number;
  variants: Set<string>;
  suppressed: number;
}

export class RateLimitedLog {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(key: string, fields: Record<string, unknown>, msg: string, variant = ''): void {
    const t = this.now();
    let window = this.windows.get(key);
    let suppressed = 0;
    if (!window || t - window.at >= this.intervalMs) {
      suppressed = window?.suppressed ?? 0;
      if (this.windows.size > 1000) this.windows.clear(); // bounded even if a caller's keys are not
      window = { at: t, variants: new Set(), suppressed: 0 };
      this.windows.set(key, window);
    } else if (window.variants.has(variant) || window.variants.size >= VARIANTS_PER_INTERVAL) {
      window.suppressed++;
      return;
    }
    window.variants.add(variant);
    this.logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, msg);
  }
}
