import { describe, expect, it } from 'vitest';
import {
  AddressSpace, EINVAL, KernelAssertionError, Machine, PGWALK_RDLOCK, PGWALK_VMA_RDLOCK_VERIFY, PGWALK_WRLOCK,
  PGWALK_WRLOCK_VERIFY, VM_READ, mmapReadLock, mmapReadUnlock, mmapWriteLock, mmapWriteUnlock, vmaStartWrite,
  walkKernelPageTableRange, walkPageMapping, walkPageRange, walkPageRangeNovma, walkPageVma,
} from '../../src/index';

// mm/pagewalk.c process_mm_walk_lock / process_vma_walk_lock (6.18), and the kernel-doc's
// "Callers of walk_page_range() and walk_page_vma() should hold @mm->mmap_lock".
function setup() {
  const m = new Machine({ geometry: 'x86_64-4level', memSize: 1 << 20 });
  const mm = m.newMm();
  const vma = mm.insertVma({ start: 0x40_0000, end: 0x40_2000, flags: VM_READ });
  return { m, mm, vma };
}
const ops = (walkLock: 0 | 1 | 2 | 3) => ({ walkLock, pteHole: () => 0 });

describe('walk_lock: what each mode asserts', () => {
  it('PGWALK_RDLOCK without the mmap lock: mmap_assert_locked fires', () => {
    const { mm } = setup();
    expect(() => walkPageRange(mm, 0x40_0000, 0x40_2000, ops(PGWALK_RDLOCK))).toThrow(KernelAssertionError);
    expect(() => walkPageRange(mm, 0x40_0000, 0x40_2000, ops(PGWALK_RDLOCK))).toThrow(/mmap_assert_locked/);
    mmapReadLock(mm);
    expect(walkPageRange(mm, 0x40_0000, 0x40_2000, ops(PGWALK_RDLOCK))).toBe(0);
  });

  it('PGWALK_WRLOCK needs the mmap write lock, then write-locks each VMA it walks (vma_start_write)', () => {
    const { mm, vma } = setup();
    mmapReadLock(mm);
    expect(() => walkPageRange(mm, 0x40_0000, 0x40_2000, ops(PGWALK_WRLOCK))).toThrow(/mmap_assert_write_locked/);
    mmapReadUnlock(mm);
    mmapWriteLock(mm);
    expect(walkPageRange(mm, 0x40_0000, 0x40_2000, ops(PGWALK_WRLOCK))).toBe(0);
    expect(vma.vmLockSeq).toBe(mm.mmLockSeq); // write-locked under this mmap write lock
    mmapWriteUnlock(mm); // ends every VMA write lock
    expect(vma.vmLockSeq).not.toBe(mm.mmLockSeq);
  });

  it('PGWALK_WRLOCK_VERIFY: the VMA must already be write-locked', () => {
    const { mm, vma } = setup();
    mmapWriteLock(mm);
    expect(() => walkPageVma(vma, ops(PGWALK_WRLOCK_VERIFY))).toThrow(/vma_assert_write_locked/);
    vmaStartWrite(vma);
    expect(walkPageVma(vma, ops(PGWALK_WRLOCK_VERIFY))).toBe(0);
  });

  it('PGWALK_VMA_RDLOCK_VERIFY: no mmap lock is asserted, the VMA must be locked', () => {
    const { mm, vma } = setup();
    expect(() => walkPageVma(vma, ops(PGWALK_VMA_RDLOCK_VERIFY))).toThrow(/vma_assert_locked/);
    vma.vmReadLocks++; // lock_vma_under_rcu
    expect(walkPageVma(vma, ops(PGWALK_VMA_RDLOCK_VERIFY))).toBe(0);
    expect(mm.mmapLock.isLocked).toBe(false);
  });

  it('walk_page_range_novma on a user mm needs the mmap lock for write (munmap frees tables after downgrading)', () => {
    const { mm } = setup();
    mmapReadLock(mm);
    expect(() => walkPageRangeNovma(mm, 0x40_0000, 0x40_2000, {}, null)).toThrow(/mmap_assert_write_locked/);
  });

  it('walk_kernel_page_table_range asserts init_mm is locked', () => {
    const { m } = setup();
    expect(() => walkKernelPageTableRange(m.initMm, 0xffff_8880_0000_0000, 0xffff_8880_0020_0000, {}, null)).toThrow(/mmap_assert_locked/);
  });

  it('walk_page_mapping asserts i_mmap_rwsem is held (lockdep_assert_held), and refuses install_pte with -EINVAL first', () => {
    const f = new AddressSpace('f');
    expect(() => walkPageMapping(f, 0n, 1n, {})).toThrow(/lockdep_assert_held/);
    expect(walkPageMapping(f, 0n, 1n, { installPte: () => 0 })).toBe(-EINVAL);
    f.iMmapRwsem.downRead();
    expect(walkPageMapping(f, 0n, 1n, {})).toBe(0);
  });
});
