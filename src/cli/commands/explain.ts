/** mmulab explain: one hardware walk, step by step, with the manuals' names (FORMATS.md image folders). */
import { createCpu, imageCpuParams, loadImage, type AccessKind } from '../../index';
import { parse } from '../args';
import type { Command, Io } from '../command';
import { InputError, UsageError } from '../errors';
import { explainTranslation, explanationBrief, explanationJson, explanationText } from '../explain-format';
import { parseRegOptions, parseVa } from './translate';

export const usage = `Usage: mmulab explain IMAGE VA [--access read|write|exec] [--user] [--json] [--brief] [--reg NAME=VALUE]...

Show how the CPU's MMU translates one virtual address, step by step: for each level the table's
physical address, the index (which VA bits), the entry's address (table + index × 8), the raw
descriptor with every field decoded by its manual name (Intel SDM Vol.3A §4.5; Arm ARM D8.3),
why the walk descended or stopped, and the result — or the fault as the manual names it
(x86-64 #PF with its error code; ARM64 Data/Instruction Abort with its DFSC/IFSC).

The walk is a debugger's: it sets no accessed/dirty bits and no Access flag.

IMAGE is an image folder (memory.bin + machine.json) or an ELF core from QEMU's dump-guest-memory.
VA is hexadecimal: 0x… or bare hex digits, '_' allowed (0x7fff_f7a0_0000).

--json: one object —
  {"va":"0x…","arch":"…","access":"read","user":false,
   "steps":[{"level":4,"table":"0x…","index":N,"va_bits":"47:39","entry_addr":"0x…","raw":"0x…",
             "kind":"table","fields":{"p":{"bits":"0","value":"0x1","meaning":"present"},…},
             "action":"descend"|"leaf"|"fault","why":"…"}, …],
   "result":{"pa":"0x…","page_size":N,"level":N,"attrs":{…}}          (on success)
   "fault":{"kind":"…","level":N,"code":"0x…","name":"…","why":"…"}}  (on a fault)
level is the hardware's number (x86-64 5 PML5 … 1 PT; ARM64 lookup level -1 … 3); code is the
#PF error code or the DFSC/IFSC, as in mmulab translate.

Options:
  --access KIND       read (default), write or exec
  --user              a user-mode access (CPL 3 / EL0); default supervisor / EL1
  --brief             one line per level instead of every field
  --json              one JSON object
  --reg NAME=VALUE    set or override a register (machine.json names, e.g. cr3=0x…, tcr_el1=0x…)
  -h, --help          this help

Exit status: 0 (a fault is an answer, not an error); 1 an image that cannot be loaded; 2 usage.
A table outside the image's memory is a fault too: x86-64 reads all-ones there (a reserved-bit
#PF), ARM64 takes a synchronous External abort on the walk (DFSC 0b0101LL).

Examples:
  mmulab explain images/x86 0x7ffff7a00123 --user --access write
  mmulab explain images/arm64 0xffff000000200000 --json
  mmulab explain guest.core ffffffff81000000 --reg efer=0xd01 --brief`;

export const explain: Command = {
  name: 'explain',
  summary: 'explain one translation step by step: tables, entries, fields, why, result or fault',
  usage,
  run(argv: string[], io: Io): number {
    const { values, positionals } = parse(
      argv,
      {
        access: { type: 'string' },
        user: { type: 'boolean' },
        json: { type: 'boolean' },
        brief: { type: 'boolean' },
        reg: { type: 'string', multiple: true },
      },
      2,
    );
    if (values.help) {
      io.out(usage);
      return 0;
    }
    if (positionals.length < 1) throw new UsageError('IMAGE is required: an image folder or an ELF core');
    if (positionals.length < 2) throw new UsageError('VA is required: the virtual address to explain, in hex (e.g. 0x7ffff7a00123)');
    const access = (values.access ?? 'read') as string;
    if (access !== 'read' && access !== 'write' && access !== 'exec') throw new UsageError(`--access '${access}': expected read, write or exec`);
    const va = parseVa(positionals[1]!);
    const regs = parseRegOptions(values.reg as unknown as string[] | undefined);
    const img = loadImage(positionals[0]!, { registers: regs, allowBigEndian: true });
    const p = imageCpuParams(img);
    let cpu;
    try {
      cpu = createCpu(p.arch, img.machine.mem, p.registers, { ...p.options, tlb: 'none' });
    } catch (e) {
      // A register state the MMU refuses (paging off, a reserved encoding…) is bad input.
      if (e instanceof RangeError) throw new InputError(`${positionals[0]}: ${e.message}`);
      throw e;
    }
    const g = img.machine.geo;
    const mem = img.machine.mem;
    const e = explainTranslation(
      { mmu: cpu.mmu, bits: img.machine.bits, geo: g, registers: p.registers, contains: (pa, len) => mem.contains(pa, len) },
      va,
      access as AccessKind,
      values.user === true,
    );
    if (values.json) io.out(JSON.stringify(explanationJson(e)));
    else if (values.brief) io.out([`${e.regime}; ${e.user ? 'user' : 'supervisor'} ${e.access} of ${'0x' + e.va.toString(16)}`, ...explanationBrief(e, g, io.style)].join('\n'));
    else io.out(explanationText(e, g, io.style));
    return 0;
  },
};
