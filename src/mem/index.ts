/** src/mem: emulated physical memory, the frame allocator and per-frame metadata. */
export * from './physmem';
export * from './frames';
export * from './framemeta';
export * from './errors';
