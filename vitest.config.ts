import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // bench/*.mjs import the built library (../dist/index.js); tests that import bench code get
    // the sources instead, so they need no build and check the code under review.
    alias: [{ find: /^\.\.\/dist\/index\.js$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Two cores on CI machines: forks keep SharedArrayBuffer-heavy tests isolated.
    pool: 'forks',
    testTimeout: 60_000,
  },
});
