/**
 * Locks modelled as state with assertions. mmulab is single-threaded where the kernel would
 * block, so a lock never waits: taking a lock that is not free is itself a bug report, as lockdep
 * would make it. What matters is that code can assert the locks it requires (mmap_assert_locked,
 * vma_assert_write_locked, lockdep_assert_held) and that misuse throws an error naming the rule.
 */

/** A kernel assertion (lockdep, VM_BUG_ON, WARN_ON) that the caller broke. */
export class KernelAssertionError extends Error {
  readonly rule: string;
  constructor(rule: string, detail: string) {
    super(`${rule}: ${detail}`);
    this.name = 'KernelAssertionError';
    this.rule = rule;
  }
}

/** struct rw_semaphore: readers or one writer. */
export class RwSemaphore {
  private readers = 0;
  private writer = false;
  constructor(readonly name: string) {}

  downRead(): void {
    if (this.writer) throw new KernelAssertionError('down_read', `${this.name} is held for write: this would deadlock`);
    this.readers++;
  }
  upRead(): void {
    if (this.readers === 0) throw new KernelAssertionError('up_read', `${this.name} is not held for read`);
    this.readers--;
  }
  downWrite(): void {
    if (this.writer || this.readers > 0) {
      throw new KernelAssertionError('down_write', `${this.name} is already held: this would deadlock`);
    }
    this.writer = true;
  }
  upWrite(): void {
    if (!this.writer) throw new KernelAssertionError('up_write', `${this.name} is not held for write`);
    this.writer = false;
  }
  /** downgrade_write: keep the lock, for read. */
  downgradeWrite(): void {
    this.upWrite();
    this.readers++;
  }
  get isLocked(): boolean {
    return this.writer || this.readers > 0;
  }
  get isWriteLocked(): boolean {
    return this.writer;
  }
  get readerCount(): number {
    return this.readers;
  }
}

/** lockdep_assert_held(&sem): held in either mode. */
export function lockdepAssertHeld(sem: RwSemaphore): void {
  if (!sem.isLocked) throw new KernelAssertionError('lockdep_assert_held', `${sem.name} is not held`);
}
