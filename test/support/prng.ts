/**
 * The tests' seeded generator: mulberry32 of bench/prng.mjs, one implementation for benchmarks and
 * tests, so that a failure reproduces from its seed.
 */
export { mulberry32 } from '../../bench/prng.mjs';
