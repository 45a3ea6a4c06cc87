/** A physical access outside emulated memory: names the address and the valid range. */
export class PhysAddrError extends RangeError {
  readonly pa: number | bigint;
  constructor(pa: number | bigint, length: number, base: number, size: number) {
    super(
      `physical address 0x${pa.toString(16)}${length > 1 ? ` (+${length} bytes)` : ''} is outside memory ` +
        `[0x${base.toString(16)}, 0x${(base + size).toString(16)})`,
    );
    this.name = 'PhysAddrError';
    this.pa = pa;
  }
}

/** The frame allocator cannot satisfy a request (the kernel's -ENOMEM). */
export class OutOfFramesError extends Error {
  constructor(order: number) {
    super(`out of physical frames: no free block of order ${order}`);
    this.name = 'OutOfFramesError';
  }
}

/** A misuse the kernel would catch with VM_BUG_ON / a bad_page report. */
export class FrameStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameStateError';
  }
}
