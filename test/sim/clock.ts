// Virtual time for one process of a simulated node: the member's timers (the role chart's ticks,
// pings, snapshot stall timers, forwarding grace) become events in the simulator's queue. A crash
// stops the clock: the dead process's timers never fire.
import type { Clock, TimerHandle } from '../../actors/ports.ts';

/** the simulator's event queue, as a clock needs it */
export interface Scheduler {
  now(): number;
  /** run `fire` at `time` (after every event already queued for that time) */
  at(time: number, fire: () => void): void;
}

interface Timer {
  cancelled: boolean;
}

export class SimClock implements Clock {
  private alive = true;

  constructor(private readonly scheduler: Scheduler) {}

  now(): number {
    return this.scheduler.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: Timer = { cancelled: false };
    this.scheduler.at(this.now() + Math.max(0, ms), () => {
      if (!timer.cancelled && this.alive) fn();
    });
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    if (handle) (handle as Timer).cancelled = true;
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    const timer: Timer = { cancelled: false };
    const every = Math.max(1, ms);
    const fire = () => {
      if (timer.cancelled || !this.alive) return;
      this.scheduler.at(this.now() + every, fire);
      fn();
    };
    this.scheduler.at(this.now() + every, fire);
    return timer;
  }

  clearInterval(handle: TimerHandle): void {
    this.clearTimeout(handle);
  }

  soon(fn: () => void): void {
    this.scheduler.at(this.now(), () => {
      if (this.alive) fn();
    });
  }

  /** the process died: nothing it scheduled runs */
  stop(): void {
    this.alive = false;
  }
}
