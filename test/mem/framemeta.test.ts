import { describe, expect, it } from 'vitest';
import { FrameStateError, PhysAddrError } from '../../src/mem/errors';
import {
  FrameMeta,
  PAGE_FLAG_NAMES,
  PG_anon,
  PG_dirty,
  PG_head,
  PG_locked,
  PG_lru,
  PG_pgtable,
  PG_private,
  PG_referenced,
  PG_reserved,
  PG_swapbacked,
  PG_uptodate,
  PG_writeback,
  pageFlagNames,
} from '../../src/mem/framemeta';
import { PhysMem } from '../../src/mem/physmem';

const MiB = 2 ** 20;

function meta(size = 8 * MiB, physBase = 0x40000000): FrameMeta {
  return new FrameMeta(new PhysMem({ size, physBase }));
}

describe('FrameMeta: refcount (include/linux/page_ref.h)', () => {
  it('starts at 0; inc/dec return the new count; any byte of the frame names the frame', () => {
    const m = meta();
    const pa = 0x40005000;
    expect(m.getRefcount(pa)).toBe(0);
    expect(m.incRefcount(pa)).toBe(1);
    expect(m.incRefcount(pa + 0xabc)).toBe(2);
    expect(m.incRefcount(pa + 0xfff)).toBe(3);
    expect(m.decRefcount(pa)).toBe(2);
    expect(m.getRefcount(pa)).toBe(2);
    // Neighbouring frames are untouched.
    expect(m.getRefcount(0x40004fff)).toBe(0);
    expect(m.getRefcount(0x40006000)).toBe(0);
    // The array is indexed by frame: 0x40005000 is frame 5.
    expect(m.refcount[5]).toBe(2);
    m.setRefcount(pa, 7);
    expect(m.getRefcount(pa)).toBe(7);
  });

  it('put_page_testzero: dropping below zero throws FrameStateError and leaves the count at 0', () => {
    const m = meta();
    m.incRefcount(0x40000000);
    expect(m.decRefcount(0x40000000)).toBe(0);
    expect(() => m.decRefcount(0x40000000)).toThrow(FrameStateError);
    expect(() => m.decRefcount(0x40000000)).toThrow(/refcount of frame 0x40000000 would drop below zero/);
    expect(m.getRefcount(0x40000000)).toBe(0);
    expect(() => m.setRefcount(0x40000000, -1)).toThrow(RangeError);
  });
});

describe('FrameMeta: mapcount (logical count; Linux stores _mapcount biased by -1)', () => {
  it('a fresh frame has mapcount 0 (Linux: _mapcount -1); inc/dec return the new count', () => {
    const m = meta();
    const pa = 0x40200000;
    expect(m.getMapcount(pa)).toBe(0);
    expect(m.incMapcount(pa)).toBe(1);
    expect(m.incMapcount(pa)).toBe(2);
    expect(m.decMapcount(pa)).toBe(1);
    expect(m.mapcount[0x200]).toBe(1);
    expect(m.getRefcount(pa)).toBe(0); // mapcount and refcount are separate
    expect(m.decMapcount(pa)).toBe(0);
  });

  it('underflow ("Bad page map") throws FrameStateError', () => {
    const m = meta();
    expect(() => m.decMapcount(0x40001000)).toThrow(/mapcount of frame 0x40001000 would drop below zero/);
    expect(m.getMapcount(0x40001000)).toBe(0);
  });
});

describe('FrameMeta: bounds (physBase 0x40000000, 8 MiB)', () => {
  const m = meta();
  it('0x3ffff000 and physEnd 0x40800000 throw PhysAddrError naming the address', () => {
    expect(() => m.getRefcount(0x3ffff000)).toThrow(PhysAddrError);
    expect(() => m.incMapcount(0x3ffff000)).toThrow(/physical address 0x3ffff000 /);
    expect(() => m.setFlag(0x40800000, PG_dirty)).toThrow(/physical address 0x40800000 /);
    expect(() => m.headOf(0x40800000)).toThrow(PhysAddrError);
    expect(m.frameIndex(0x407fffff)).toBe(2047);
  });
});

describe('FrameMeta: page flags', () => {
  it('the PG_* bit numbers are distinct, fit the 32-bit word, and each has a name', () => {
    const bits = [
      PG_locked, PG_referenced, PG_uptodate, PG_dirty, PG_lru, PG_head, PG_private, PG_writeback,
      PG_swapbacked, PG_reserved, PG_anon, PG_pgtable,
    ];
    expect(new Set(bits).size).toBe(12);
    for (const b of bits) {
      expect(Number.isInteger(b) && b >= 0 && b < 32).toBe(true);
      expect(PAGE_FLAG_NAMES[b]).toBeTypeOf('string');
    }
    expect(PAGE_FLAG_NAMES[PG_dirty]).toBe('dirty');
    expect(PAGE_FLAG_NAMES[PG_pgtable]).toBe('pgtable');
  });

  it('set, test, clear one flag without disturbing the others or other frames', () => {
    const m = meta();
    const pa = 0x40003000;
    m.setFlag(pa, PG_dirty);
    m.setFlag(pa, PG_lru);
    expect(m.testFlag(pa, PG_dirty)).toBe(true);
    expect(m.testFlag(pa, PG_lru)).toBe(true);
    expect(m.testFlag(pa, PG_locked)).toBe(false);
    expect(m.getFlags(pa)).toBe(((1 << PG_dirty) | (1 << PG_lru)) >>> 0);
    expect(pageFlagNames(m.getFlags(pa))).toEqual(['dirty', 'lru']);
    expect(m.testFlag(pa + 0x1000, PG_dirty)).toBe(false);
    m.clearFlag(pa, PG_dirty);
    expect(m.testFlag(pa, PG_dirty)).toBe(false);
    expect(m.testFlag(pa, PG_lru)).toBe(true);
  });

  it('test_and_set_bit (trylock_page) and test_and_clear_bit return the old value', () => {
    const m = meta();
    const pa = 0x40010000;
    expect(m.testAndSetFlag(pa, PG_locked)).toBe(false); // lock taken
    expect(m.testAndSetFlag(pa, PG_locked)).toBe(true); // already locked
    expect(m.testAndClearFlag(pa, PG_locked)).toBe(true);
    expect(m.testAndClearFlag(pa, PG_locked)).toBe(false);
    expect(m.getFlags(pa)).toBe(0);
  });

  it('bit 31 is stored unsigned; a bit outside 0..31 is a RangeError', () => {
    const m = meta();
    m.setFlag(0x40000000, 31);
    expect(m.getFlags(0x40000000)).toBe(0x80000000);
    expect(() => m.setFlag(0x40000000, 32)).toThrow(RangeError);
  });
});

describe('FrameMeta: compound pages — a 2 MiB folio (order 9)', () => {
  const m = meta(); // physBase 0x40000000, frames 0..2047
  const head = 0x40200000; // frame 0x200 = 512
  m.setCompound(head, 9);

  it('head: PG_head, order 9, compoundHead -1 (a head is not a tail)', () => {
    expect(m.isHead(head)).toBe(true);
    expect(m.isTail(head)).toBe(false);
    expect(m.testFlag(head, PG_head)).toBe(true);
    expect(m.order[512]).toBe(9);
    expect(m.compoundHead[512]).toBe(-1);
    expect(m.headOf(head)).toBe(head);
    expect(m.compoundOrder(head)).toBe(9);
  });

  it('tails: every frame 0x40201000 … 0x403ff000 maps to the head', () => {
    // Last tail: 0x40200000 + 511 * 0x1000 = 0x403ff000, frame 1023.
    expect(m.compoundHead[513]).toBe(512);
    expect(m.compoundHead[1023]).toBe(512);
    expect(m.headOf(0x40201000)).toBe(head);
    expect(m.headOf(0x40300abc)).toBe(head);
    expect(m.headOf(0x403ff000)).toBe(head);
    expect(m.headOf(0x403fffff)).toBe(head);
    expect(m.isTail(0x403ff000)).toBe(true);
    expect(m.isHead(0x403ff000)).toBe(false);
    expect(m.testFlag(0x40201000, PG_head)).toBe(false);
    expect(m.compoundOrder(0x40345000)).toBe(9);
  });

  it('the frames on either side are not part of it', () => {
    expect(m.headOf(0x401ff000)).toBe(0x401ff000);
    expect(m.headOf(0x40400000)).toBe(0x40400000);
    expect(m.headOf(0x40400123)).toBe(0x40400000);
    expect(m.isTail(0x40400000)).toBe(false);
    expect(m.compoundOrder(0x40400000)).toBe(0);
    expect(m.compoundHead[1024]).toBe(-1);
    expect(m.compoundHead[511]).toBe(-1);
  });

  it('misuse: misaligned head, overlap with an existing folio, clearCompound on a tail, past the end', () => {
    expect(() => m.setCompound(0x40201000, 9)).toThrow(FrameStateError);
    expect(() => m.setCompound(0x40000000, 10)).toThrow(/already belongs to a compound page/);
    expect(() => m.setCompound(0x40300000, 1)).toThrow(FrameStateError);
    expect(() => m.clearCompound(0x40201000)).toThrow(/not the head of a compound page/);
    expect(() => m.setCompound(0x40000000, 12)).toThrow(PhysAddrError); // 16 MiB in 8 MiB
    expect(() => m.setCompound(0x40000000, 0)).toThrow(RangeError);
    // Still intact after the refused calls.
    expect(m.headOf(0x403ff000)).toBe(head);
    expect(m.compoundHead[0]).toBe(-1);
  });

  it('clearCompound (split or free) turns every frame back into a single page', () => {
    m.clearCompound(head);
    expect(m.isHead(head)).toBe(false);
    expect(m.order[512]).toBe(0);
    expect(m.headOf(0x403ff000)).toBe(0x403ff000);
    expect(m.isTail(0x40201000)).toBe(false);
    // And the range can become two 1 MiB folios.
    m.setCompound(0x40200000, 8);
    m.setCompound(0x40300000, 8);
    expect(m.headOf(0x402ff000)).toBe(0x40200000);
    expect(m.headOf(0x40300000)).toBe(0x40300000);
    expect(m.headOf(0x40301000)).toBe(0x40300000);
  });
});

describe('FrameMeta: reset', () => {
  it('clears every field of a block and nothing beyond it', () => {
    const m = meta();
    for (const pa of [0x40000000, 0x40001000, 0x40002000]) {
      m.incRefcount(pa);
      m.incMapcount(pa);
      m.setFlag(pa, PG_dirty);
    }
    m.setCompound(0x40000000, 1);
    m.reset(0x40000000, 1);
    expect(m.getRefcount(0x40001000)).toBe(0);
    expect(m.getMapcount(0x40000000)).toBe(0);
    expect(m.getFlags(0x40000000)).toBe(0);
    expect(m.isTail(0x40001000)).toBe(false);
    expect(m.getRefcount(0x40002000)).toBe(1);
    expect(m.testFlag(0x40002000, PG_dirty)).toBe(true);
  });
});
