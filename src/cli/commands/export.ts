/** mmulab export: run a scenario and write the machine it leaves as an image folder (FORMATS.md). */
import { existsSync, statSync } from 'node:fs';
import { registersFor, saveImage, vmFlagNames, type MmStruct } from '../../index';
import { parse } from '../args';
import type { Command, Io } from '../command';
import { InputError, UsageError } from '../errors';
import { hex } from '../style';
import { loadScenarioFile, runScenarioFile } from './run';

export const usage = `Usage: mmulab export SCENARIO --out DIR [--process NAME] [--json]

Run the scenario file SCENARIO (docs/scenarios.md) and write the machine it leaves as an image
folder DIR (FORMATS.md): memory.bin, the whole emulated physical memory, and machine.json with the
registers of a CPU running one of its processes — x86-64 CR3, ARM64 TTBR0_EL1 point at that
process's root table (TTBR1_EL1 at init_mm's) — and the VMA lists of every live process:
  "processes": [{"name":"…","pgd":"0x…","vmas":[{"start":"0x…","end":"0x…","flags":["VM_READ",…],"pgoff":"0x…","file":"…"}]}]
Both files are written to temporaries and renamed, so a failure leaves no partial image. The image
is written only when the run is clean: a bad scenario, an unmet "expect" or a kernel assertion
exits 1 and writes nothing.

The other commands then read it: mmulab dump DIR, translate DIR VA…, walk DIR.

Options:
  --out DIR       the image folder to write (created if missing)
  --process NAME  the process whose tables the registers select (default: the first process
                  still alive at the end, in the order the scenario created them)
  --json          say what was written as one JSON object instead of a sentence:
                  {"out":"…","arch":"…","geometry":"…","memory_size":N,"phys_base":"0x…","process":"…",
                   "root_table":"0x…","processes":[{"name":"…","pgd":"0x…","vmas":N}]}
  -h, --help      this help

Exit status: 0 written; 1 a bad scenario, a failed run, no live process, or a write error; 2 usage.

Examples:
  mmulab export examples/thp-and-hugetlb.json --out /tmp/thp
  mmulab export my-scenario.json --out images/fork --process child && mmulab dump images/fork
  mmulab export examples/arm64-16k.json --out /tmp/a16 --json | jq -r .root_table`;

function vmaList(mm: MmStruct): Record<string, unknown>[] {
  return mm.vmaList.map((v) => {
    const o: Record<string, unknown> = { start: hex(v.vmStart), end: hex(v.vmEnd), flags: vmFlagNames(v.vmFlags), pgoff: hex(v.vmPgoff) };
    if (v.vmFile) o.file = v.vmFile.name;
    if (v.name) o.name = v.name;
    return o;
  });
}

export const exportCommand: Command = {
  name: 'export',
  summary: 'run a scenario and write the resulting machine as an image folder',
  usage,
  run(argv: string[], io: Io): number {
    const { values, positionals } = parse(argv, { out: { type: 'string' }, process: { type: 'string' }, json: { type: 'boolean' } }, 1);
    if (values.help) {
      io.out(usage);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('SCENARIO is required: a scenario file (JSON, docs/scenarios.md)');
    const out = values.out as string | undefined;
    if (out === undefined || out === '') throw new UsageError('--out DIR is required: the image folder to write');
    if (existsSync(out) && !statSync(out).isDirectory()) throw new InputError(`--out ${out}: exists and is not a folder`);
    const path = positionals[0]!;
    const scenario = loadScenarioFile(path);
    const res = runScenarioFile(path, scenario);
    if (res.failures.length) {
      throw new InputError(`${path}: the run failed, no image written:\n  ${res.failures.join('\n  ')}`);
    }
    const live = [...res.processes].filter(([, mm]) => !mm.exited);
    let chosen: [string, MmStruct] | undefined;
    const wanted = values.process as string | undefined;
    if (wanted !== undefined) {
      const mm = res.processes.get(wanted);
      if (!mm) throw new InputError(`--process ${wanted}: the scenario has no such process (it has ${[...res.processes.keys()].join(', ')})`);
      if (mm.exited) throw new InputError(`--process ${wanted}: that process has exited by the end of the scenario; its tables are gone`);
      chosen = [wanted, mm];
    } else {
      chosen = live[0];
      if (!chosen) throw new InputError(`${path}: every process has exited by the end of the scenario; there are no user tables to export`);
    }
    const m = res.machine;
    const regs = registersFor(m, chosen[1].pgd, m.initMm.pgd);
    const processes = live.map(([name, mm]) => ({ name, pgd: hex(mm.pgd), vmas: vmaList(mm) }));
    saveImage(out, m, regs, { processes });
    if (values.json) {
      io.out(
        JSON.stringify({
          out,
          arch: m.geo.arch,
          geometry: m.geo.name,
          memory_size: m.mem.size,
          phys_base: hex(m.mem.physBase),
          process: chosen[0],
          root_table: hex(chosen[1].pgd),
          processes: processes.map((p) => ({ name: p.name, pgd: p.pgd, vmas: p.vmas.length })),
        }),
      );
      return 0;
    }
    io.out(
      `${out}: ${m.geo.name} image of ${m.mem.size} bytes at ${hex(m.mem.physBase)}, registers for process "${chosen[0]}" (root table ${hex(chosen[1].pgd)}); ` +
        `${processes.length} process${processes.length === 1 ? '' : 'es'} with ${processes.reduce((a, p) => a + p.vmas.length, 0)} VMAs listed`,
    );
    return 0;
  },
};
