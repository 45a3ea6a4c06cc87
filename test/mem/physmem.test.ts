import { describe, expect, it } from 'vitest';
import { PhysAddrError } from '../../src/mem/errors';
import { FRAME_SIZE, PhysMem } from '../../src/mem/physmem';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

describe('PhysMem: a 16 GiB memory is committed lazily', () => {
  it('creates 16 GiB, writes and reads its last frame, and RSS grows by far less than 1 GiB', () => {
    const rss0 = process.memoryUsage().rss;
    const mem = new PhysMem({ size: 16 * GiB });
    expect(mem.frames).toBe(4 * 1024 * 1024); // 16 GiB / 4 KiB = 2^22
    expect(mem.physEnd).toBe(0x400000000);
    const last = 0x3fffff000; // 16 GiB - 4 KiB
    mem.write64(last, 0xdeadbeefcafef00dn);
    mem.write64(last + 0xff8, 0x0123456789abcdefn);
    expect(mem.read64(last)).toBe(0xdeadbeefcafef00dn);
    expect(mem.readLo(last + 0xff8)).toBe(0x89abcdef);
    expect(mem.readHi(last + 0xff8)).toBe(0x01234567);
    // A frame in the middle was never written: it reads zero.
    expect(mem.read64(8 * GiB)).toBe(0n);
    const grown = process.memoryUsage().rss - rss0;
    expect(grown).toBeLessThan(512 * MiB);
  });
});

describe('PhysMem: the three views agree on the same bytes (little-endian host)', () => {
  const mem = new PhysMem({ size: 64 * 1024 });
  const pa = 0x1000;

  it('write64(0x1122334455667788) reads back as lo 0x55667788, hi 0x11223344 and bytes 88 77 … 11', () => {
    mem.write64(pa, 0x1122334455667788n);
    expect(mem.read64(pa)).toBe(0x1122334455667788n);
    expect(mem.readLo(pa)).toBe(0x55667788);
    expect(mem.readHi(pa)).toBe(0x11223344);
    expect(mem.u32[pa / 4]).toBe(0x55667788);
    expect(mem.u32[pa / 4 + 1]).toBe(0x11223344);
    expect(mem.view.getUint32(pa, true)).toBe(0x55667788);
    expect(mem.view.getUint32(pa + 4, true)).toBe(0x11223344);
    expect(Array.from(mem.readBytes(pa, 8))).toEqual([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    expect(mem.read32(pa)).toBe(0x55667788);
    expect(mem.read32(pa, false)).toBe(0x88776655);
  });

  it('read64Endian: the same bytes read big-endian are 0x8877665544332211', () => {
    mem.write64(pa, 0x1122334455667788n);
    expect(mem.read64Endian(pa, true)).toBe(0x1122334455667788n);
    expect(mem.read64Endian(pa, false)).toBe(0x8877665544332211n);
  });

  it('write64Endian big-endian stores the most significant byte first', () => {
    mem.write64Endian(pa + 8, 0x1122334455667788n, false);
    expect(Array.from(mem.readBytes(pa + 8, 8))).toEqual([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    expect(mem.read64(pa + 8)).toBe(0x8877665544332211n);
  });

  it('writeHalves is write64 of hi * 2^32 + lo; write64 keeps the low 64 bits of a wider value', () => {
    mem.writeHalves(pa, 0x00000fe7, 0x80000000);
    expect(mem.read64(pa)).toBe(0x8000000000000fe7n);
    mem.write64(pa, (1n << 64n) + 0x42n);
    expect(mem.read64(pa)).toBe(0x42n);
    mem.write64(pa, -1n);
    expect(mem.readLo(pa)).toBe(0xffffffff);
    expect(mem.readHi(pa)).toBe(0xffffffff);
  });

  it('zero() clears exactly the range given', () => {
    mem.writeBytes(0x2000, new Uint8Array(16).fill(0xab));
    mem.zero(0x2004, 8);
    expect(Array.from(mem.readBytes(0x2000, 16))).toEqual([
      0xab, 0xab, 0xab, 0xab, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xab, 0xab, 0xab,
    ]);
  });

  it('two PhysMem over one buffer (a worker view) see the same bytes', () => {
    const other = new PhysMem({ size: mem.size, buffer: mem.buffer });
    mem.write64(0x3000, 0xfeedn);
    expect(other.read64(0x3000)).toBe(0xfeedn);
  });
});

describe('PhysMem: physBase 0x40000000 (the Arm virt board)', () => {
  const mem = new PhysMem({ size: 1 * MiB, physBase: 0x40000000 });

  it('address 0x40000000 is byte 0 of the buffer', () => {
    mem.write64(0x40000000, 0x1122334455667788n);
    expect(mem.view.getUint8(0)).toBe(0x88);
    expect(mem.u32[0]).toBe(0x55667788);
    expect(mem.offset(0x40000000)).toBe(0);
    expect(mem.offset(0x400ffff8, 8)).toBe(0xffff8);
    expect(mem.physEnd).toBe(0x40100000);
    expect(mem.contains(0x400ffff8, 8)).toBe(true);
    expect(mem.contains(0x400ffffc, 8)).toBe(false);
    expect(mem.contains(0x3ffffff8, 8)).toBe(false);
  });

  it('0x3ffff000, below memory, throws PhysAddrError naming the address in hex', () => {
    expect(() => mem.read64(0x3ffff000)).toThrow(PhysAddrError);
    expect(() => mem.read64(0x3ffff000)).toThrow(/physical address 0x3ffff000 /);
    try {
      mem.readLo(0x3ffff000);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(PhysAddrError);
      expect((e as PhysAddrError).pa).toBe(0x3ffff000);
    }
  });

  it('physEnd 0x40100000 throws PhysAddrError naming it; so does an access straddling the end', () => {
    expect(() => mem.read64(0x40100000)).toThrow(PhysAddrError);
    expect(() => mem.read64(0x40100000)).toThrow(/physical address 0x40100000 /);
    expect(() => mem.write32(0x40100000, 1)).toThrow(/physical address 0x40100000 /);
    expect(() => mem.read32(0x400ffffe)).toThrow(/physical address 0x400ffffe \(\+4 bytes\)/);
    expect(() => mem.read64Endian(0x400ffffc, false)).toThrow(PhysAddrError);
    expect(() => mem.readBytes(0x400fff00, 0x101)).toThrow(PhysAddrError);
  });

  it('a descriptor address that is not 8-byte aligned is an error naming it', () => {
    expect(() => mem.read64(0x40000004)).toThrow(/0x40000004 is not 8-byte aligned/);
    expect(() => mem.readLo(0x40000001)).toThrow(/0x40000001 is not 8-byte aligned/);
    expect(() => mem.writeHalves(0x40000002, 0, 0)).toThrow(/not 8-byte aligned/);
  });

  it('pfnOf is pa >> 12, not relative to physBase', () => {
    expect(PhysMem.pfnOf(0x40001fff)).toBe(0x40001);
    expect(PhysMem.pfnOf(0xfffff000000)).toBe(0xfffff000); // above 2^32: arithmetic, not >>
  });
});

describe('PhysMem: bad size or base is rejected', () => {
  it.each([0, -FRAME_SIZE, 4095, 6144, 1.5 * FRAME_SIZE, Number.NaN, 2 ** 53 + FRAME_SIZE])('size %s', (size) => {
    expect(() => new PhysMem({ size })).toThrow(RangeError);
  });

  it.each([0x800, 0x40000001, -FRAME_SIZE, 0.5])('physBase %s', (physBase) => {
    expect(() => new PhysMem({ size: FRAME_SIZE, physBase })).toThrow(/phys_base/);
  });

  it('memory must end at or below 2^52', () => {
    expect(() => new PhysMem({ size: 2 * FRAME_SIZE, physBase: 2 ** 52 - FRAME_SIZE })).toThrow(/2\^52/);
    // Exactly at the limit is fine.
    const top = new PhysMem({ size: FRAME_SIZE, physBase: 2 ** 52 - FRAME_SIZE });
    top.write64(0xffffffffffff8, 7n);
    expect(top.read64(0xffffffffffff8)).toBe(7n);
  });

  it('a buffer whose length differs from size is rejected', () => {
    expect(() => new PhysMem({ size: 2 * FRAME_SIZE, buffer: new SharedArrayBuffer(FRAME_SIZE) })).toThrow(/buffer of 4096 bytes/);
  });
});

describe('PhysMem: the 16 GiB limit', () => {
  it('a memory above 2^34 bytes is refused with a message naming the limit, before any buffer is made', () => {
    // 2^34 bytes = 2^32 32-bit words, the longest Uint32Array Node 20 makes.
    expect(() => new PhysMem({ size: 2 ** 34 + 4096 })).toThrow(/at most 17179869184 \(16 GiB/);
  });
});
