import { describe, expect, it } from 'vitest';
import { PhysMem } from '../../src/mem/physmem';
import { createCpu } from '../../src/arch/cpu';
import { TraceError, encodeBinaryTrace, parseBinaryTrace, parseTextTrace, parseTrace, replayTrace, traceOf } from '../../src/arch/trace';

describe('text traces', () => {
  it('VA KIND [u], comments, blank lines, long and short kind names, 64-bit VAs', () => {
    const r = parseTextTrace(['# a comment', '0x400000 r', '', '400008 write u   # trailing', 'ffff888000001000 x', '0XFFFFFFFFFFFFFFFF W USER'].join('\n'));
    expect(r.count).toBe(4);
    expect([...r.vaHi]).toEqual([0, 0, 0xffff8880, 0xffffffff]);
    expect([...r.vaLo]).toEqual([0x400000, 0x400008, 0x1000, 0xffffffff]);
    expect([...r.flags]).toEqual([0, 1 | 4, 2, 1 | 4]);
  });
  it.each([
    ['0x1000', /line 1: expected "VA KIND \[u\]"/],
    ['0x1000 r\n0xg000 r', /line 2: VA '0xg000' is not a hexadecimal 64-bit value/],
    ['0x1000 r\n\n0x2000 q', /line 3: access kind 'q' is not r\/w\/x/],
    ['0x1000 r k', /line 1: 'k' is not 'u'/],
    ['0x10000000000000000 r', /line 1: VA .* is not a hexadecimal 64-bit value/],
  ])('%j is refused naming the line', (text, msg) => {
    expect(() => parseTextTrace(text, 'trace')).toThrow(TraceError);
    expect(() => parseTextTrace(text, 'trace')).toThrow(msg);
  });
});

describe('binary traces: "MMUTRC1\\0" then 9-byte records (u64 LE VA, u8 kind | user << 2)', () => {
  it('decodes hand-written bytes', () => {
    const bytes = new Uint8Array([
      0x4d, 0x4d, 0x55, 0x54, 0x52, 0x43, 0x31, 0x00,
      0x00, 0x30, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, // 0x403000 write user
      0x00, 0x10, 0x00, 0x00, 0x80, 0x88, 0xff, 0xff, 0x02, // 0xffff888000001000 exec
    ]);
    const r = parseTrace(bytes);
    expect(r.count).toBe(2);
    expect([r.vaHi[0], r.vaLo[0], r.flags[0]]).toEqual([0, 0x403000, 5]);
    expect([r.vaHi[1], r.vaLo[1], r.flags[1]]).toEqual([0xffff8880, 0x1000, 2]);
    expect([...encodeBinaryTrace(r)]).toEqual([...bytes]);
  });
  it('a length that is not whole records, and a bad flags byte, are refused naming the place', () => {
    const good = encodeBinaryTrace(traceOf([[0x1000n, 'read']]));
    expect(() => parseBinaryTrace(good.subarray(0, good.length - 1), 't.bin')).toThrow(/t.bin: 8 bytes after the magic is not a whole number of 9-byte records/);
    const bad = good.slice();
    bad[16] = 3;
    expect(() => parseBinaryTrace(bad, 't.bin')).toThrow(/t.bin record 0 \(byte 16\): flags 0x3/);
    expect(() => parseTrace(new Uint8Array([0x30, 0, 0x20, 0x72]), 'x')).toThrow(/neither a text trace/);
  });
});

describe('replayTrace', () => {
  it('counts hits, misses and faults without throwing (SDM Vol.3A 4.10.2: translations are cached per page)', () => {
    // x86-64 4-level tables by hand: PML4 0x1000 → PDPT 0x2000 → PD 0x3000 → PT 0x4000 (PD[2], VA 0x400000)
    const mem = new PhysMem({ size: 2 ** 20 });
    mem.write64(0x1000, 0x2027n);
    mem.write64(0x2000, 0x3027n);
    mem.write64(0x3010, 0x4027n);
    mem.write64(0x4000, 0x8_0067n); // VA 0x400000 → 0x80000 user RW
    mem.write64(0x4008, 0x8_1063n); // VA 0x401000 → 0x81000 supervisor RW
    const cpu = createCpu('x86_64', mem, { cr0: 0x8001_0001n, cr3: 0x1000n, cr4: 0xa0n, efer: 0xd00n });
    const trace = parseTextTrace(['0x400000 r u', '0x400008 w u', '0x400ff0 r u', '0x401000 r u', '0x401000 r', '0x500000 r', '0x800000000000 r'].join('\n'));
    const progress: number[] = [];
    const s = replayTrace(cpu, trace, (done) => progress.push(done), 2);
    expect(progress).toEqual([2, 4, 6, 7]);
    expect(s).toMatchObject({
      records: 7,
      accesses: 7,
      // 0x400008 and 0x400ff0 hit; the user read of the supervisor page 0x401000 is a miss + protection fault
      // (not cached), then the supervisor read misses and fills.
      hits: 2,
      misses: 5,
      faults: 3,
      faultsByKind: { protection: 1, not_present: 1, non_canonical: 1 },
      externalAborts: 0,
    });
  });
});
