// npm run bench: every suite, a table on stdout and bench/results.json.
import Benchmark from 'benchmark';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { mmapReadLock, walkPageRange } from '../dist/index.js';
import { denseSpace } from './fixtures.mjs';

const results = [];

function suite(name, cases) {
  return new Promise((resolve) => {
    const s = new Benchmark.Suite(name);
    for (const c of cases) s.add(c.name, c.fn, { minSamples: 10 });
    s.on('cycle', (e) => {
      const b = e.target;
      const c = cases.find((x) => x.name === b.name);
      const perSecond = b.hz * c.units;
      results.push({ suite: name, case: b.name, opsPerSecond: b.hz, rme: b.stats.rme, units: c.unit, unitsPerSecond: perSecond });
      console.log(`${name.padEnd(14)} ${b.name.padEnd(36)} ${(perSecond / 1e6).toFixed(1).padStart(8)} M ${c.unit}/s  ±${b.stats.rme.toFixed(1)}%  (${b.stats.sample.length} samples)`);
    });
    s.on('complete', resolve);
    s.run({ async: false });
  });
}

// walkPageRange with a pte_entry callback over a dense range: entries per second.
const DENSE_PAGES = 1 << 20; // 1M ptes: 4 GiB of 4K pages
const walkCases = ['x86_64-4level', 'x86_64-5level', 'arm64-4k-48', 'arm64-16k-47', 'arm64-64k-42'].map((geo) => {
  const { mm, start, end } = denseSpace(geo, DENSE_PAGES);
  mmapReadLock(mm);
  let sink = 0;
  const ops = {
    pteEntry(pte, addr, next, walk) {
      sink += walk.pt.u32[(pte - walk.pt.physBase) / 4] & 1;
      return 0;
    },
  };
  return {
    name: `dense pte_entry ${geo}`,
    unit: 'entries',
    units: DENSE_PAGES,
    fn() {
      sink = 0;
      walkPageRange(mm, start, end, ops);
      if (sink !== DENSE_PAGES) throw new Error(`walked ${sink} present ptes, expected ${DENSE_PAGES}`);
    },
  };
});
await suite('walk', walkCases);

const out = { date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model, cores: os.cpus().length, results };
writeFileSync(new URL('./results.json', import.meta.url), JSON.stringify(out, null, 2) + '\n');
console.log('\nwritten bench/results.json');
