// A clock that can be paused, as SIGSTOP pauses a process: while paused no timer fires and no
// deferred work runs; the wall clock (`now`) keeps going. On resume what fell due runs in the order
// it fell due: a timeout once, an interval once however many periods it missed (as an OS timer is
// delivered once to a resumed process). The demo gives one to each node it can pause; the member
// passes it to XState (`createActor(…, { clock })`), so the raft chart's ticks stop too.
import { type Clock, realClock, type TimerHandle } from './ports.ts';

interface Timer {
  inner: TimerHandle;
  cancelled: boolean;
  /** an interval whose missed firing is already queued */
  queued: boolean;
}

export class PausableClock implements Clock {
  private paused = false;
  /** what fell due while paused, in order */
  private due: Array<() => void> = [];

  constructor(private readonly base: Clock = realClock) {}

  get isPaused(): boolean {
    return this.paused;
  }

  /** timers that fall due from now on wait for `resume` */
  pause(): void {
    this.paused = true;
  }

  /** run what fell due while paused (each on its own turn, in order), then run normally; returns how many */
  resume(): number {
    this.paused = false;
    const due = this.due;
    this.due = [];
    for (const fn of due) this.base.soon(() => this.fire(fn));
    return due.length;
  }

  // arrow properties: XState calls `clock.setTimeout` detached from the object
  now = (): number => this.base.now();

  setTimeout = (fn: () => void, ms: number): TimerHandle => {
    const timer: Timer = { inner: undefined, cancelled: false, queued: false };
    timer.inner = this.base.setTimeout(
      () =>
        this.fire(() => {
          if (!timer.cancelled) fn();
        }),
      ms,
    );
    return timer;
  };

  clearTimeout = (handle: TimerHandle): void => {
    const timer = handle as Timer;
    timer.cancelled = true;
    this.base.clearTimeout(timer.inner);
  };

  setInterval = (fn: () => void, ms: number): TimerHandle => {
    const timer: Timer = { inner: undefined, cancelled: false, queued: false };
    timer.inner = this.base.setInterval(() => {
      if (!this.paused) return fn();
      if (timer.queued) return;
      timer.queued = true;
      this.due.push(() => {
        timer.queued = false;
        if (!timer.cancelled) fn();
      });
    }, ms);
    return timer;
  };

  clearInterval = (handle: TimerHandle): void => {
    const timer = handle as Timer;
    timer.cancelled = true;
    this.base.clearInterval(timer.inner);
  };

  soon = (fn: () => void): void => {
    this.base.soon(() => this.fire(fn));
  };

  /** run `fn` now, or when resumed */
  private fire(fn: () => void): void {
    if (this.paused) this.due.push(fn);
    else fn();
  }
}
