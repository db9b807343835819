/**
 * Work a component started and did not await (a commit, an announcement, a
 * presence removal), so that shutdown can wait for it: `settled()` resolves
 * once everything tracked so far has resolved or rejected.
 */
export class InFlight {
  private readonly pending = new Set<Promise<unknown>>();

  /** Tracks `work` until it settles; returns it unchanged. */
  track<T>(work: Promise<T>): Promise<T> {
    this.pending.add(work);
    const forget = () => this.pending.delete(work);
    work.then(forget, forget);
    return work;
  }

  /** Resolves once every promise tracked so far has settled; never rejects. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }
}
