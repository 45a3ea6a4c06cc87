// Builds dist/: the library (dist/index.js), its walk worker (dist/walk-worker.js), the CLI
// (dist/cli.js) and, with --types, the .d.ts files.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';

const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', sourcemap: true, logLevel: 'warning' };
await build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/index.js' });
// The parallel walk's worker thread (src/walk/parallel.ts loads it from next to dist/index.js).
await build({ ...common, entryPoints: ['src/walk/walk-worker.ts'], outfile: 'dist/walk-worker.js' });
await build({
  ...common,
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/cli.js',
  banner: { js: '#!/usr/bin/env node' },
});
chmodSync('dist/cli.js', 0o755);
if (process.argv.includes('--types')) {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
