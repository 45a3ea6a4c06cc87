import { describe, expect, it } from 'vitest';
import { FrameStateError, OutOfFramesError, PhysAddrError } from '../../src/mem/errors';
import { FrameAllocator, MAX_ORDER } from '../../src/mem/frames';
import { PhysMem } from '../../src/mem/physmem';
import { mulberry32 } from '../support/prng';

const KiB = 1024;
const MiB = 2 ** 20;
const GiB = 2 ** 30;

function allocator(size: number, physBase = 0): FrameAllocator {
  return new FrameAllocator(new PhysMem({ size, physBase }));
}


describe('FrameAllocator: natural alignment (buddy blocks are aligned in physical address terms)', () => {
  for (const physBase of [0, 0x40000000]) {
    it(`orders 0..18 on 2 GiB at physBase 0x${physBase.toString(16)}: each block is a multiple of 4 KiB << order`, () => {
      const a = allocator(2 * GiB, physBase);
      expect(a.maxOrder).toBe(18);
      expect(a.totalFrames).toBe(0x80000);
      const got: Array<[number, number]> = [];
      for (let order = 0; order <= 18; order++) {
        const pa = a.alloc(order);
        expect(pa % (4096 * 2 ** order)).toBe(0);
        expect(pa).toBeGreaterThanOrEqual(physBase);
        expect(pa + 4096 * 2 ** order).toBeLessThanOrEqual(physBase + 2 * GiB);
        got.push([pa, order]);
      }
      // No two blocks overlap.
      const sorted = [...got].sort((x, y) => x[0] - y[0]);
      for (let j = 1; j < sorted.length; j++) {
        expect(sorted[j]![0]).toBeGreaterThanOrEqual(sorted[j - 1]![0] + 4096 * 2 ** sorted[j - 1]![1]);
      }
      // 2^0 + … + 2^18 = 2^19 - 1 frames in use.
      expect(a.usedFrames).toBe(0x7ffff);
      expect(a.freeFrames + a.usedFrames).toBe(a.totalFrames);
      for (const [pa, order] of got) a.free(pa, order);
      // Everything merged back: two 1 GiB blocks and nothing else.
      expect(a.freeFrames).toBe(0x80000);
      expect(a.buddyInfo()).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    });
  }

  it('MAX_ORDER is at least 18 (2^18 frames = 1 GiB) and maxOrder is limited by memory size', () => {
    expect(MAX_ORDER).toBeGreaterThanOrEqual(18);
    expect(allocator(4 * GiB).maxOrder).toBe(MAX_ORDER);
    expect(allocator(1 * MiB).maxOrder).toBe(8); // 256 frames
    expect(allocator(1 * MiB + 4 * KiB).maxOrder).toBe(8); // 257 frames
    expect(allocator(4 * KiB).maxOrder).toBe(0);
    expect(new FrameAllocator(new PhysMem({ size: 64 * MiB }), { maxOrder: 9 }).maxOrder).toBe(9);
  });

  it('a fresh allocator hands out the lowest frames first, in ascending order', () => {
    const a = allocator(1 * MiB, 0x40000000);
    expect(a.alloc()).toBe(0x40000000);
    expect(a.alloc()).toBe(0x40001000);
    expect(a.alloc()).toBe(0x40002000);
    expect(a.alloc(1)).toBe(0x40004000);
    expect(a.alloc(0)).toBe(0x40003000);
  });
});

describe('FrameAllocator: free and merge', () => {
  it('freeing every order-0 frame of a 4 MiB memory in scrambled order merges back to one order-10 block', () => {
    const a = allocator(4 * MiB);
    const pas: number[] = [];
    for (let j = 0; j < 1024; j++) pas.push(a.alloc(0));
    expect(a.freeFrames).toBe(0);
    const rnd = mulberry32(7);
    for (let j = pas.length - 1; j > 0; j--) {
      const r = Math.floor(rnd() * (j + 1));
      [pas[j], pas[r]] = [pas[r]!, pas[j]!];
    }
    for (const pa of pas) a.free(pa, 0);
    expect(a.freeFrames).toBe(1024);
    expect(a.buddyInfo()).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(a.alloc(10)).toBe(0);
  });

  it('a block does not merge with a buddy that is still allocated', () => {
    const a = allocator(16 * KiB); // 4 frames, maxOrder 2
    const f0 = a.alloc(0);
    const f1 = a.alloc(0);
    expect([f0, f1]).toEqual([0x0, 0x1000]);
    a.free(f0, 0);
    expect(a.buddyInfo()).toEqual([1, 1, 0]); // frame 0 alone, frames 2-3 as an order-1 block
    a.free(f1, 0);
    expect(a.buddyInfo()).toEqual([0, 0, 1]);
  });
});

describe('FrameAllocator: misuse of free throws FrameStateError and changes nothing', () => {
  const a = allocator(4 * MiB, 0x40000000);
  const b2 = a.alloc(2);
  const b0 = a.alloc(0);
  const snapshot = () => [a.freeFrames, a.usedFrames, ...a.buddyInfo()];

  it('double free, including after the block merged into a larger free block', () => {
    const x = a.alloc(0);
    a.free(x, 0);
    const before = snapshot();
    expect(() => a.free(x, 0)).toThrow(FrameStateError);
    expect(() => a.free(x, 0)).toThrow(/double free of 0x/);
    expect(snapshot()).toEqual(before);
  });

  it('wrong order', () => {
    const before = snapshot();
    expect(() => a.free(b2, 1)).toThrow(/allocated with order 2/);
    expect(() => a.free(b0, 1)).toThrow(FrameStateError);
    expect(() => a.free(b2, 19)).toThrow(FrameStateError);
    expect(() => a.free(b2, -1)).toThrow(FrameStateError);
    expect(snapshot()).toEqual(before);
  });

  it('misaligned address: not frame aligned, not aligned to the order, or a tail of a block', () => {
    const before = snapshot();
    expect(() => a.free(b0 + 8, 0)).toThrow(/not aligned/);
    expect(() => a.free(b2 + 0x2000, 2)).toThrow(/not aligned/);
    expect(() => a.free(b2 + 0x1000, 0)).toThrow(/inside the block of order 2/);
    expect(snapshot()).toEqual(before);
  });

  it('outside memory: below physBase, at physEnd, or a block running past the end', () => {
    const before = snapshot();
    expect(() => a.free(0x3ffff000, 0)).toThrow(FrameStateError);
    expect(() => a.free(0x40400000, 0)).toThrow(/outside memory/);
    expect(() => a.free(0x40000000, 11)).toThrow(FrameStateError); // 8 MiB block in 4 MiB
    expect(snapshot()).toEqual(before);
  });

  it('isFree and reserve bounds-check with PhysAddrError naming the address', () => {
    expect(() => a.isFree(0x3ffff000)).toThrow(PhysAddrError);
    expect(() => a.isFree(0x40400000)).toThrow(/physical address 0x40400000 /);
    expect(() => a.reserve(0x403ff000, 0x2000)).toThrow(PhysAddrError);
  });

  it('the correct free still works afterwards', () => {
    a.free(b2, 2);
    a.free(b0, 0);
    expect(a.freeFrames).toBe(1024);
    expect(a.buddyInfo()).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  });
});

describe('FrameAllocator: exhaustion', () => {
  it('256 order-0 allocations fill 1 MiB; the next throws OutOfFramesError and tryAlloc returns -1', () => {
    const a = allocator(1 * MiB);
    const seen = new Set<number>();
    for (let j = 0; j < 256; j++) seen.add(a.alloc());
    expect(seen.size).toBe(256);
    expect(a.freeFrames).toBe(0);
    expect(a.usedFrames).toBe(256);
    expect(() => a.alloc()).toThrow(OutOfFramesError);
    expect(() => a.alloc(3)).toThrow(/no free block of order 3/);
    expect(a.tryAlloc(0)).toBe(-1);
    expect(a.usedFrames).toBe(256);
  });

  it('fragmentation: free frames without an aligned run of the order still fail', () => {
    const a = allocator(64 * KiB); // 16 frames
    const pas: number[] = [];
    for (let j = 0; j < 16; j++) pas.push(a.alloc());
    for (let j = 0; j < 16; j += 2) a.free(pas[j]!, 0); // every other frame free
    expect(a.freeFrames).toBe(8);
    expect(a.tryAlloc(1)).toBe(-1);
    expect(a.tryAlloc(0)).not.toBe(-1);
  });

  it('orders above maxOrder fail like exhaustion; a malformed order is a RangeError', () => {
    const a = allocator(1 * MiB);
    expect(a.tryAlloc(9)).toBe(-1);
    expect(() => a.alloc(9)).toThrow(OutOfFramesError);
    expect(() => a.alloc(-1)).toThrow(RangeError);
    expect(() => a.alloc(1.5)).toThrow(RangeError);
    expect(a.usedFrames).toBe(0);
  });
});

describe('FrameAllocator: counts', () => {
  it('free + used = total through a mix of orders', () => {
    const a = allocator(8 * MiB); // 2048 frames
    expect([a.totalFrames, a.freeFrames, a.usedFrames]).toEqual([2048, 2048, 0]);
    const x = a.alloc(3);
    const y = a.alloc(0);
    const z = a.alloc(9);
    expect([a.freeFrames, a.usedFrames]).toEqual([2048 - 8 - 1 - 512, 8 + 1 + 512]);
    a.free(y, 0);
    expect(a.usedFrames).toBe(520);
    a.free(x, 3);
    a.free(z, 9);
    expect([a.freeFrames, a.usedFrames]).toEqual([2048, 0]);
  });

  it('allocatedOrder reports the order of a block start, -1 elsewhere', () => {
    const a = allocator(1 * MiB);
    const x = a.alloc(4);
    expect(a.allocatedOrder(x)).toBe(4);
    expect(a.allocatedOrder(x + 0x1000)).toBe(-1);
    expect(a.allocatedOrder(x + 8)).toBe(-1);
    a.free(x, 4);
    expect(a.allocatedOrder(x)).toBe(-1);
  });
});

describe('FrameAllocator: reserve (memblock_reserve at start-up)', () => {
  it('reserves every frame the byte range touches; those frames are never handed out', () => {
    const a = allocator(64 * KiB); // 16 frames
    a.reserve(0x1800, 0x1000); // bytes 0x1800..0x27ff: frames 1 and 2
    expect(a.usedFrames).toBe(2);
    expect(a.isFree(0x0)).toBe(true);
    expect(a.isFree(0x1000)).toBe(false);
    expect(a.isFree(0x2fff - 0x1000)).toBe(false);
    expect(a.isFree(0x3000)).toBe(true);
    // The rest: frame 0 (order 0), frame 3 (order 0), frames 4-7 (order 2), 8-15 (order 3).
    expect(a.buddyInfo()).toEqual([2, 0, 1, 1, 0]);
    const got: number[] = [];
    for (let pa = a.tryAlloc(0); pa !== -1; pa = a.tryAlloc(0)) got.push(pa);
    expect(got.length).toBe(14);
    expect(got).not.toContain(0x1000);
    expect(got).not.toContain(0x2000);
  });

  it('reserved frames are order-0 allocations that free(pa, 0) releases (free_reserved_page)', () => {
    const a = allocator(64 * KiB);
    a.reserve(0x4000, 0x4000); // frames 4-7
    expect(a.allocatedOrder(0x5000)).toBe(0);
    expect(() => a.free(0x4000, 2)).toThrow(/allocated with order 0/);
    for (const pa of [0x4000, 0x5000, 0x6000, 0x7000]) a.free(pa, 0);
    expect(a.freeFrames).toBe(16);
    expect(a.buddyInfo()).toEqual([0, 0, 0, 0, 1]);
  });

  it('firmware at the start of an Arm virt memory: the first 2 MiB block is never allocated', () => {
    const a = allocator(8 * MiB, 0x40000000);
    a.reserve(0x40000000, 2 * MiB);
    expect(a.usedFrames).toBe(512);
    const blocks: number[] = [];
    for (let pa = a.tryAlloc(9); pa !== -1; pa = a.tryAlloc(9)) blocks.push(pa);
    expect(blocks.sort((x, y) => x - y)).toEqual([0x40200000, 0x40400000, 0x40600000]);
  });

  it('a range that overlaps a frame in use is refused and nothing changes; len 0 is a no-op', () => {
    const a = allocator(64 * KiB);
    const x = a.alloc(0);
    const before = a.buddyInfo();
    expect(() => a.reserve(0x0, 0x3000)).toThrow(FrameStateError);
    expect(a.buddyInfo()).toEqual(before);
    expect(a.usedFrames).toBe(1);
    a.reserve(0x5000, 0);
    expect(a.usedFrames).toBe(1);
    a.free(x, 0);
  });
});

describe('FrameAllocator: setFailAfter (the -ENOMEM injection hook)', () => {
  it('the next n allocations succeed, then every allocation fails until the hook is cleared', () => {
    const a = allocator(1 * MiB);
    a.setFailAfter(2);
    a.alloc();
    a.alloc(1);
    expect(() => a.alloc()).toThrow(OutOfFramesError);
    expect(a.tryAlloc(0)).toBe(-1);
    expect(a.usedFrames).toBe(3);
    a.setFailAfter(null);
    expect(a.tryAlloc(0)).not.toBe(-1);
    a.setFailAfter(0);
    expect(a.tryAlloc(0)).toBe(-1);
    a.setFailAfter(null);
    expect(() => a.setFailAfter(-1)).toThrow(RangeError);
  });
});

describe('FrameAllocator: physBase that is not 2 MiB aligned', () => {
  it('physBase 0x40003000, 4 MiB: the initial blocks are the largest aligned pieces (hand-computed)', () => {
    const a = allocator(4 * MiB, 0x40003000);
    // pfns 0x40003..0x40402: 0x40003 (o0), 0x40004 (o2), 0x40008 (o3), 0x40010 (o4), 0x40020 (o5),
    // 0x40040 (o6), 0x40080 (o7), 0x40100 (o8), 0x40200 (o9), 0x40400 (o1), 0x40402 (o0).
    expect(a.maxOrder).toBe(10);
    expect(a.buddyInfo()).toEqual([2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    expect(a.alloc(9)).toBe(0x40200000);
    expect(a.tryAlloc(9)).toBe(-1);
    expect(a.alloc(8)).toBe(0x40100000);
    expect([0x40003000, 0x40402000]).toContain(a.alloc(0));
    expect(a.alloc(1)).toBe(0x40400000);
  });

  it('physBase 0x40003000, 64 MiB: exactly the 31 whole 2 MiB-aligned blocks inside memory', () => {
    const a = allocator(64 * MiB, 0x40003000);
    const blocks: number[] = [];
    for (let pa = a.tryAlloc(9); pa !== -1; pa = a.tryAlloc(9)) {
      expect(pa % 0x200000).toBe(0);
      blocks.push(pa);
    }
    // [0x40200000, 0x44000000) inside [0x40003000, 0x44003000): (0x44000000 - 0x40200000) / 2 MiB.
    expect(blocks.length).toBe(31);
    expect(Math.min(...blocks)).toBe(0x40200000);
    expect(Math.max(...blocks)).toBe(0x43e00000);
    for (const pa of blocks) a.free(pa, 9);
    expect(a.freeFrames).toBe(a.totalFrames);
  });
});

describe('FrameAllocator: the allocator never touches the memory it manages', () => {
  it('a pattern written to every frame survives allocation, free and reserve', () => {
    const mem = new PhysMem({ size: 256 * KiB, physBase: 0x80000000 });
    new Uint8Array(mem.buffer).fill(0x5a);
    const a = new FrameAllocator(mem);
    const x = a.alloc(3);
    const y = a.alloc(0);
    a.reserve(0x80030000, 0x1000);
    a.free(x, 3);
    a.free(y, 0);
    expect(new Uint8Array(mem.buffer).every((b) => b === 0x5a)).toBe(true);
  });
});

describe('FrameAllocator: randomized alloc/free against a model', () => {
  for (const [physBase, seed] of [
    [0, 1],
    [0x40003000, 2],
    [0xfffff7000, 3], // addresses above 2^32 (crossing 2^36): arithmetic, not bitwise, on pfns
    [2 ** 51 + 0x3000, 4], // pfns above 2^32 (near the 52-bit physical limit)
  ] as const) {
    it(`20,000 operations at physBase 0x${physBase.toString(16)} (seed ${seed})`, () => {
      const mem = new PhysMem({ size: 16 * MiB, physBase });
      const a = new FrameAllocator(mem);
      const frames = a.totalFrames;
      const initial = a.buddyInfo();
      const rnd = mulberry32(seed);
      const live = new Map<number, number>(); // pa -> order
      const keys: number[] = [];
      const used = new Uint8Array(frames);
      let usedCount = 0;

      // Does the model hold a free, naturally aligned run of 2^order frames? With buddy merging,
      // an allocation of that order must then succeed.
      const modelHasRun = (order: number): boolean => {
        const n = 2 ** order;
        const firstPfn = Math.ceil(physBase / 4096 / n) * n;
        for (let pfn = firstPfn; (pfn - physBase / 4096) + n <= frames; pfn += n) {
          const i0 = pfn - physBase / 4096;
          let ok = true;
          for (let i = i0; i < i0 + n; i++) if (used[i]) { ok = false; break; }
          if (ok) return true;
        }
        return false;
      };

      for (let op = 0; op < 20_000; op++) {
        const doAlloc = keys.length === 0 || rnd() < 0.52;
        if (doAlloc) {
          const r = rnd();
          const order = r < 0.6 ? 0 : r < 0.8 ? 1 + Math.floor(rnd() * 3) : r < 0.97 ? 4 + Math.floor(rnd() * 4) : 8 + Math.floor(rnd() * 5);
          const pa = a.tryAlloc(order);
          if (pa === -1) {
            if (order <= a.maxOrder) expect(modelHasRun(order)).toBe(false);
            continue;
          }
          const n = 2 ** order;
          expect(pa % (4096 * n)).toBe(0);
          const i0 = (pa - physBase) / 4096;
          expect(i0).toBeGreaterThanOrEqual(0);
          expect(i0 + n).toBeLessThanOrEqual(frames);
          for (let i = i0; i < i0 + n; i++) {
            if (used[i]) throw new Error(`op ${op}: frame ${i} handed out twice`);
            used[i] = 1;
          }
          usedCount += n;
          live.set(pa, order);
          keys.push(pa);
        } else {
          const k = Math.floor(rnd() * keys.length);
          const pa = keys[k]!;
          keys[k] = keys[keys.length - 1]!;
          keys.pop();
          const order = live.get(pa)!;
          live.delete(pa);
          a.free(pa, order);
          const i0 = (pa - physBase) / 4096;
          used.fill(0, i0, i0 + 2 ** order);
          usedCount -= 2 ** order;
        }
        expect(a.usedFrames).toBe(usedCount);
        expect(a.freeFrames + a.usedFrames).toBe(frames);
        if (op % 2000 === 1999) {
          for (let i = 0; i < frames; i++) {
            if (a.isFree(physBase + i * 4096) !== (used[i] === 0)) throw new Error(`op ${op}: isFree disagrees at frame ${i}`);
          }
        }
      }
      for (const [pa, order] of live) a.free(pa, order);
      expect(a.freeFrames).toBe(frames);
      expect(a.buddyInfo()).toEqual(initial);
    });
  }
});
