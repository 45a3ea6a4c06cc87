import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Two cores on CI machines: forks keep SharedArrayBuffer-heavy tests isolated.
    pool: 'forks',
    testTimeout: 60_000,
  },
});
