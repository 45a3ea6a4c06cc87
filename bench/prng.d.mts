// Types of bench/prng.mjs, for the tests (test/support/prng.ts).
export declare function mulberry32(seed: number): () => number;
