/** vm_flags bits, as include/linux/mm.h numbers them. */
export const VM_NONE = 0x0;
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYEXEC = 0x40;
export const VM_MAYSHARE = 0x80;
export const VM_GROWSDOWN = 0x100;
export const VM_PFNMAP = 0x400;
export const VM_LOCKED = 0x2000;
export const VM_IO = 0x4000;
export const VM_SEQ_READ = 0x8000;
export const VM_RAND_READ = 0x10000;
export const VM_DONTCOPY = 0x20000;
export const VM_DONTEXPAND = 0x40000;
export const VM_LOCKONFAULT = 0x80000;
export const VM_ACCOUNT = 0x100000;
export const VM_NORESERVE = 0x200000;
export const VM_HUGETLB = 0x400000;
export const VM_SYNC = 0x800000;
export const VM_WIPEONFORK = 0x2000000;
export const VM_DONTDUMP = 0x4000000;
export const VM_SOFTDIRTY = 0x8000000;
export const VM_MIXEDMAP = 0x10000000;
export const VM_HUGEPAGE = 0x20000000;
export const VM_NOHUGEPAGE = 0x40000000;
// VM_MERGEABLE is bit 31: kept as an unsigned number, test with (flags & VM_MERGEABLE) !== 0 after >>> 0.
export const VM_MERGEABLE = 0x80000000;

export const VM_FLAG_NAMES: Readonly<Record<string, number>> = {
  VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, VM_MAYREAD, VM_MAYWRITE, VM_MAYEXEC, VM_MAYSHARE,
  VM_GROWSDOWN, VM_PFNMAP, VM_LOCKED, VM_IO, VM_SEQ_READ, VM_RAND_READ, VM_DONTCOPY,
  VM_DONTEXPAND, VM_LOCKONFAULT, VM_ACCOUNT, VM_NORESERVE, VM_HUGETLB, VM_SYNC, VM_WIPEONFORK,
  VM_DONTDUMP, VM_SOFTDIRTY, VM_MIXEDMAP, VM_HUGEPAGE, VM_NOHUGEPAGE, VM_MERGEABLE,
};

/** Parse flag names (["VM_READ", "VM_WRITE"]) into bits; unknown names are an error naming them. */
export function parseVmFlags(names: readonly string[], where = 'flags'): number {
  let bits = 0;
  names.forEach((n, i) => {
    const b = VM_FLAG_NAMES[n];
    if (b === undefined) throw new RangeError(`${where}[${i}]: unknown vm flag '${n}'`);
    bits = (bits | b) >>> 0;
  });
  return bits;
}

export function vmFlagNames(flags: number): string[] {
  return Object.entries(VM_FLAG_NAMES)
    .filter(([, b]) => ((flags & b) >>> 0) !== 0)
    .map(([n]) => n);
}
