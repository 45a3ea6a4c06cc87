/** Linux errno values; kernel-style functions return their negatives. */
export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOMEM = 12;
export const EAGAIN = 11;
export const ENOSPC = 28;
export const EACCES = 13;
export const EOVERFLOW = 75;
export const EOPNOTSUPP = 95;
export const EHWPOISON = 133;
