import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { countWalk, loadImage, parseScenarioText, runScenario } from '../../src/index';
import { tempDir } from '../mm/image-fixtures';
import { run } from './run';

const EXAMPLES = join(__dirname, '../../examples');

/** The address a named mapping got in the scenario's own run (the run is deterministic). */
function mappingAddr(file: string, process: string, as: string): number {
  const r = runScenario(parseScenarioText(readFileSync(join(EXAMPLES, file), 'utf8')));
  const e = r.log.find((l) => l.op === 'mmap' && l.process === process && l.detail.as === as)!;
  return parseInt(e.detail.addr as string, 16);
}

function memAt(dir: string, pa: number, n: number): Buffer {
  const json = JSON.parse(readFileSync(join(dir, 'machine.json'), 'utf8')) as { phys_base: string };
  const off = pa - parseInt(json.phys_base, 16);
  return readFileSync(join(dir, 'memory.bin')).subarray(off, off + n);
}

describe('mmulab export', () => {
  it('ARM64 16K: the image loads with the regime TCR_EL1 selects, the process list is there, and the hardware walk finds the written bytes', async () => {
    const dir = tempDir();
    const r = await run('export', join(EXAMPLES, 'arm64-16k.json'), '--out', dir);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const img = loadImage(dir);
    expect(img.machine.geo.name).toBe('arm64-16k-47');
    expect(img.roots.map((x) => x.name)).toEqual(['ttbr0_el1', 'ttbr1_el1']);
    const json = JSON.parse(readFileSync(join(dir, 'machine.json'), 'utf8')) as { processes: Array<{ name: string; pgd: string; vmas: Array<Record<string, unknown>> }> };
    expect(json.processes.map((p) => p.name)).toEqual(['init']);
    const init = json.processes[0]!;
    // TTBR0_EL1.BADDR is the process's root table (48-bit OA: BADDR = bits 47:1).
    expect(parseInt(init.pgd, 16)).toBe(img.roots[0]!.table);
    expect(init.vmas).toHaveLength(5);
    const heap = mappingAddr('arm64-16k.json', 'init', 'heap');
    const v = init.vmas.find((x) => x.start === '0x' + heap.toString(16))!;
    expect(v).toMatchObject({ end: '0x' + (heap + 65536).toString(16), flags: ['VM_READ', 'VM_WRITE', 'VM_MAYREAD', 'VM_MAYWRITE', 'VM_MAYEXEC', 'VM_ACCOUNT'], name: 'heap' });
    const text = init.vmas.find((x) => x.name === 'text')!;
    expect(text).toMatchObject({ file: 'prog', pgoff: '0x0' });
    // The CPU's walk of the exported tables (translate) finds "16K pages" at heap+20K.
    const t = await run('translate', dir, '0x' + (heap + 20 * 1024).toString(16), '--user', '--json');
    expect(t.code).toBe(0);
    const out = JSON.parse(t.out) as { pa: string; page_size: number; level: number };
    expect(out.page_size).toBe(16384);
    expect(out.level).toBe(3); // Arm ARM: lookup level 3 holds page descriptors
    expect(memAt(dir, parseInt(out.pa, 16), 9).toString()).toBe('16K pages');
    // The big THP is one 32M block at level 2, the hugetlb page another.
    const walk = countWalk(img.machine, img.roots);
    expect(walk.leavesByLevel[2]).toBe(2);
  });

  it('x86-64: CR3 is the chosen process\'s root; the hugetlb page is a 2M PDE leaf (SDM Vol.3A Table 4-18: PS = 1 maps a 2-MByte page)', async () => {
    const dir = tempDir();
    const r = await run('export', join(EXAMPLES, 'thp-and-hugetlb.json'), '--out', dir, '--process', 'app');
    expect(r.code).toBe(0);
    const img = loadImage(dir);
    expect(img.machine.geo.name).toBe('x86_64-4level');
    const json = JSON.parse(readFileSync(join(dir, 'machine.json'), 'utf8')) as { registers: Record<string, string>; processes: Array<{ pgd: string }> };
    expect(json.registers.cr3).toBe(json.processes[0]!.pgd);
    const huge = mappingAddr('thp-and-hugetlb.json', 'app', 'huge');
    const t = await run('translate', dir, '0x' + (huge + 2 * 2 ** 20).toString(16), '--user', '--json');
    const out = JSON.parse(t.out) as { pa: string; page_size: number; level: number };
    expect(out).toMatchObject({ page_size: 2097152, level: 2 });
    expect(memAt(dir, parseInt(out.pa, 16), 12).toString()).toBe('hugetlb page');
  });

  it('every process exited: exit 1, nothing written', async () => {
    const dir = join(tempDir(), 'img');
    const r = await run('export', join(EXAMPLES, 'fork-cow.json'), '--out', dir);
    expect(r.code).toBe(1);
    expect(r.err).toContain('every process has exited by the end of the scenario');
    expect(existsSync(join(dir, 'memory.bin'))).toBe(false);
  });

  it('--process: unknown or exited is exit 1', async () => {
    const dir = tempDir();
    const a = await run('export', join(EXAMPLES, 'arm64-16k.json'), '--out', dir, '--process', 'nobody');
    expect(a.code).toBe(1);
    expect(a.err).toBe('mmulab export: --process nobody: the scenario has no such process (it has init, sh)');
    const b = await run('export', join(EXAMPLES, 'arm64-16k.json'), '--out', dir, '--process', 'sh');
    expect(b.code).toBe(1);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a failed expectation or a bad scenario writes nothing and exits 1', async () => {
    const dir = tempDir();
    const f = join(dir, 's.json');
    writeFileSync(f, JSON.stringify({ format: 'mmulab-scenario/1', processes: [{ name: 'p', ops: [{ op: 'touch', at: '0x10000', expect: 'ok' }] }] }));
    const out = join(dir, 'img');
    const r = await run('export', f, '--out', out);
    expect(r.code).toBe(1);
    expect(r.err).toContain('processes[0].ops[0] (p touch): expected ok, got SIGSEGV');
    expect(existsSync(out)).toBe(false);
    writeFileSync(f, '{"format": "mmulab-scenario/1", "processes": []}');
    const bad = await run('export', f, '--out', out);
    expect(bad.code).toBe(1);
    expect(bad.err).toBe(`mmulab export: ${f}: processes: expected at least one process`);
  });

  it('usage: SCENARIO and --out are required (exit 2); --help exits 0 with examples', async () => {
    expect((await run('export')).code).toBe(2);
    expect((await run('export', join(EXAMPLES, 'arm64-16k.json'))).code).toBe(2);
    const h = await run('export', '--help');
    expect(h.code).toBe(0);
    expect(h.out).toContain('Examples:');
  });
});
