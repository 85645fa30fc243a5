// A clock whose time moves only when a test says so (actors/ports.ts's Clock): "time passes" is a
// step of the test, not a wait. Timers fire in order during `advance`; `soon` work runs on `settle`.
import type { Clock, TimerHandle } from '../../actors/ports.ts';

export class ManualClock implements Clock {
  private t = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; fn: () => void; every?: number }>();
  private soonQueue: Array<() => void> = [];

  now = () => this.t;
  setTimeout = (fn: () => void, ms: number): TimerHandle => this.add({ at: this.t + ms, fn });
  clearTimeout = (handle: TimerHandle) => void this.timers.delete(handle as number);
  setInterval = (fn: () => void, ms: number): TimerHandle => this.add({ at: this.t + ms, fn, every: ms });
  clearInterval = (handle: TimerHandle) => void this.timers.delete(handle as number);
  soon = (fn: () => void) => void this.soonQueue.push(fn);

  private add(timer: { at: number; fn: () => void; every?: number }): number {
    const id = this.nextId++;
    this.timers.set(id, timer);
    return id;
  }

  /** move time forward, firing what falls due in order */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.timers.entries()].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!next) break;
      const [id, timer] = next;
      this.t = timer.at;
      if (timer.every !== undefined) timer.at += timer.every;
      else this.timers.delete(id);
      timer.fn();
      this.settle();
    }
    this.t = end;
    this.settle();
  }

  settle(): void {
    while (this.soonQueue.length) for (const fn of this.soonQueue.splice(0)) fn();
  }
}
