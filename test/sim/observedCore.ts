// The raft core as the simulator hands it to a member (MemberRuntimeOptions.makeCore): the real core,
// with the simulator looking over its shoulder — each Ready as handed out, each message stepped,
// each batch applied — and a failed assertion reported instead of lost inside the role chart.
import { RaftCore, type RaftCoreOptions, type Ready } from '../../machines/raft/core.ts';
import type { RaftMessage } from '../../machines/raft/messages.ts';

export interface CoreObserver {
  ready(rd: Ready): void;
  step(m: RaftMessage): void;
  /** after advance: the Ready's committed entries were applied */
  advanced(rd: Ready): void;
  failed(err: unknown): void;
}

export class ObservedCore extends RaftCore {
  constructor(
    options: RaftCoreOptions,
    private readonly observer: CoreObserver,
  ) {
    super(options);
  }

  override ready(): Ready {
    const rd = super.ready();
    this.observer.ready(rd);
    return rd;
  }

  override advance(rd: Ready): void {
    super.advance(rd);
    this.observer.advanced(rd);
  }

  override step(m: RaftMessage): void {
    this.observer.step(m);
    try {
      super.step(m);
    } catch (err) {
      this.observer.failed(err);
    }
  }

  override tick(): void {
    try {
      super.tick();
    } catch (err) {
      this.observer.failed(err);
    }
  }
}
