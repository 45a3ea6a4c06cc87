/** mmulab translate: what the hardware walk makes of each VA in an image (FORMATS.md, translate). */
import { createCpu, imageCpuParams, isFault, loadImage, type AccessKind, type TranslateOutcome } from '../../index';
import { parse, parseU64 } from '../args';
import type { Command, Io } from '../command';
import { UsageError } from '../errors';
import { hex, sizeName } from '../style';

export const usage = `Usage: mmulab translate IMAGE VA... [--access read|write|exec] [--user] [--json] [--reg NAME=VALUE]...

Translate each virtual address VA the way the CPU's MMU does (the hardware walk of src/arch, not the
kernel's helpers): x86-64 4/5-level paging with R/W, U/S, XD, SMEP/SMAP/PKRU; ARM64 VMSAv8-64 stage 1
with TTBR0/TTBR1, granules, APTable/XN, PAN. The walk is a debugger's: it sets no accessed/dirty bits.

IMAGE is an image folder (memory.bin + machine.json) or an ELF core from QEMU's dump-guest-memory.
VA is hexadecimal (0x… or bare hex digits), any 64-bit value.

Text (default): one line per VA —
  0xffff888000123000 -> 0x123000  1G page, level 3  rw nx g a d pkey=0
  0x7f0000000000     fault not_present at level 4, code 0x4
--json: one object per VA (JSON Lines, FORMATS.md) —
  {"va":"0x…","pa":"0x…","page_size":N,"level":N,"attrs":{…}}
  {"va":"0x…","fault":{"kind":"…","level":N,"code":"0x…"}}
level is the hardware's number for the table holding the leaf or the fault (x86-64 5 PML5 … 1 PT;
ARM64 lookup level -1 … 3); code is the x86 #PF error code or the ARM64 DFSC.

Options:
  --access KIND       read (default), write or exec
  --user              a user-mode access (CPL 3 / EL0); default supervisor / EL1
  --reg NAME=VALUE    set or override a register (machine.json names, e.g. tcr_el1=0x…): an ARM64
                      ELF core from QEMU carries no system registers, so they are given this way
  --json              JSON Lines
  -h, --help          this help

Examples:
  mmulab translate images/x86 0xffff888000123000 0x400000
  mmulab translate images/arm64 0x400000 --access write --user --json
  mmulab translate guest.core ffffffff81000000 --reg efer=0xd01`;

/** Parse --reg NAME=VALUE options. */
export function parseRegOptions(values: readonly string[] | undefined): Record<string, bigint> {
  const regs: Record<string, bigint> = {};
  for (const r of values ?? []) {
    const m = /^([a-z0-9_]+)=(.+)$/i.exec(r);
    if (!m) throw new UsageError(`--reg '${r}': expected NAME=VALUE, e.g. --reg tcr_el1=0x80100010`);
    regs[m[1]!.toLowerCase()] = parseU64(m[2]!, `--reg ${m[1]}`);
  }
  return regs;
}

/** A VA argument: hex with or without 0x, up to 64 bits. */
export function parseVa(text: string): bigint {
  const t = text.replace(/_/g, '');
  const h = t.replace(/^0x/i, '');
  if (!/^[0-9a-f]{1,16}$/i.test(h)) throw new UsageError(`VA '${text}' is not a hexadecimal 64-bit address (expected e.g. 0xffff888000123000)`);
  return BigInt('0x' + h);
}

function attrText(attrs: Readonly<Record<string, number | boolean | string>>): string {
  return Object.entries(attrs)
    .map(([k, v]) => (typeof v === 'boolean' ? (v ? k : '') : typeof v === 'string' ? `${k}="${v}"` : `${k}=${v}`))
    .filter((s) => s !== '')
    .join(' ');
}

export function translationJson(t: TranslateOutcome): string {
  if (isFault(t)) return JSON.stringify({ va: hex(t.va), fault: { kind: t.fault.kind, level: t.fault.level, code: hex(t.fault.code) } });
  return JSON.stringify({ va: hex(t.va), pa: hex(t.pa), page_size: t.pageSize, level: t.level, attrs: t.attrs });
}

export function translationText(t: TranslateOutcome, width: number): string {
  const va = hex(t.va).padEnd(width);
  if (isFault(t)) return `${va}  fault ${t.fault.kind} at level ${t.fault.level}, code ${hex(t.fault.code)}`;
  return `${va}  -> ${hex(t.pa)}  ${sizeName(t.pageSize)} page, level ${t.level}  ${attrText(t.attrs)}`.trimEnd();
}

export const translate: Command = {
  name: 'translate',
  summary: 'translate virtual addresses through the hardware page walk of an image',
  usage,
  run(argv: string[], io: Io): number {
    const { values, positionals } = parse(argv, {
      access: { type: 'string' },
      user: { type: 'boolean' },
      json: { type: 'boolean' },
      reg: { type: 'string', multiple: true },
    });
    if (values.help) {
      io.out(usage);
      return 0;
    }
    if (positionals.length < 1) throw new UsageError('IMAGE is required: an image folder or an ELF core');
    if (positionals.length < 2) throw new UsageError('at least one VA is required');
    const access = (values.access ?? 'read') as string;
    if (access !== 'read' && access !== 'write' && access !== 'exec') throw new UsageError(`--access '${access}': expected read, write or exec`);
    const vas = positionals.slice(1).map(parseVa);
    const regs = parseRegOptions(values.reg as unknown as string[] | undefined);
    const img = loadImage(positionals[0]!, { registers: regs, allowBigEndian: true });
    const p = imageCpuParams(img);
    const cpu = createCpu(p.arch, img.machine.mem, p.registers, { ...p.options, tlb: 'none' });
    const width = Math.max(...vas.map((v) => hex(v).length));
    for (const va of vas) {
      const t = cpu.translate(va, access as AccessKind, values.user === true, { debug: true });
      io.out(values.json ? translationJson(t) : translationText(t, width));
    }
    return 0;
  },
};
