/*
 * walker.c - a native reference for `mmulab walk` (FORMATS.md, "mmulab walk").
 *
 * Reads an image folder (DIR/memory.bin, DIR/machine.json), derives the translation regime from
 * the registers exactly as mmulab's loader does (src/mm/image.ts), and walks every translatable
 * range the way src/walk/count.ts drives src/walk/pagewalk.c-style walking:
 *
 *   - five logical levels pgd/p4d/pud/pmd/pte with Linux's folding (include/asm-generic/
 *     pgtable-nop4d.h, -nopud.h, -nopmd.h): a folded level shares its parent's entry, its parent's
 *     none/bad/present tests are the trivial 0/0/1, and only the lowest alias tests for real;
 *   - every slot of every table reached inside the range is seen once, either by the lowest
 *     alias's entry callback or by pte_hole (mm/pagewalk.c calls pte_entry for empty ptes too);
 *   - each entry goes through an indirect call (struct walk_ops, as struct mm_walk_ops does).
 *
 * It prints one JSON line with entries, leaves, leaves_by_level, checksum (sum of output address
 * >> 12 mod 2^64) and the walk time. Loading is not timed.
 *
 * With --translate FILE it does something else: the hardware walk of each VA in FILE (little-endian
 * u64s) for a user-mode read, as `mmulab translate --user` does it without a TLB (SDM Vol.3A 4.5,
 * Arm ARM D8.2-D8.4), and prints the count, the faults, the sum of the physical addresses and the
 * time of the loop ("translate mode" below).
 *
 * Build: cc -O2 -std=c99 -o walker walker.c        Run: ./walker DIR [--start VA] [--end VA]
 *                                                        ./walker DIR --translate FILE
 *
 * Exit codes as mmulab's: 0 success, 1 bad image or a table pointer outside memory, 2 usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- errors ---------------------------------------------------------------------------------- */

static void die(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("walker: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(code);
}

/* ---- memory ---------------------------------------------------------------------------------- */

static const uint8_t *mem;   /* memory.bin, mapped read-only */
static uint64_t mem_size;    /* bytes */
static uint64_t phys_base;   /* physical address of byte 0 */
static uint64_t phys_end;    /* phys_base + mem_size */

/* Descriptors are little-endian in memory.bin (x86-64 always; ARM64 with SCTLR_EL1.EE = 0, the
 * only case the Linux page-walk commands accept). */
static inline uint64_t rd64(const uint64_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

static inline const uint64_t *entry_at(uint64_t pa) { return (const uint64_t *)(mem + (pa - phys_base)); }
static inline uint64_t pa_of(const uint64_t *p) { return phys_base + (uint64_t)((const uint8_t *)p - mem); }

/* ---- the regime ------------------------------------------------------------------------------ */

enum { PGD, P4D, PUD, PMD, PTE, NLEVELS };
enum { ARCH_X86, ARCH_ARM64 };
enum { PA52_NONE, PA52_LPA, PA52_LPA2 };

struct regime {
  int arch;
  char name[24];             /* the geometry name, as src/arch/geometry.ts spells it */
  int levels;                /* CONFIG_PGTABLE_LEVELS */
  int va_bits;
  int page_shift;
  uint64_t page_size;
  int shift[NLEVELS];        /* PGDIR_SHIFT, P4D_SHIFT, PUD_SHIFT, PMD_SHIFT, PAGE_SHIFT */
  uint64_t ptrs[NLEVELS];    /* PTRS_PER_* (1 for a folded level) */
  int folded[NLEVELS];
  int hw[NLEVELS];           /* hardware level of the physical level a logical level lives in */
  int pud_leaf;              /* Linux makes PUD leaves (x86-64; ARM64 4K with a real pmd level) */
  int pa52;
};

static struct regime R;

struct root {
  const char *name;
  uint64_t table;
  uint64_t start;
  uint64_t last;             /* inclusive: a range may end at 2^64 */
};
static struct root roots[2];
static int nroots;

/* ---- the architectures' predicates (what Linux 6.18 believes about an entry) ------------------ */

/* x86-64: arch/x86/include/asm/pgtable.h, pgtable_types.h, pgtable-invert.h. */
#define X86_PRESENT 0x1ull
#define X86_USER 0x4ull
#define X86_PSE 0x80ull
#define X86_PROTNONE 0x100ull                    /* _PAGE_GLOBAL, meaningful with PRESENT clear */
#define X86_KNL_ERRATUM 0x60ull                  /* _PAGE_DIRTY | _PAGE_ACCESSED */
#define X86_KERNPG_TABLE 0x63ull                 /* PRESENT | RW | ACCESSED | DIRTY */
#define X86_PFN_MASK 0x000ffffffffff000ull       /* PTE_PFN_MASK: bits 51:12 */
#define X86_FLAGS_MASK (~X86_PFN_MASK)           /* bits 63:52 and 11:0 */
#define X86_PMD_PAGE_MASK 0x000fffffffe00000ull  /* PHYSICAL_PMD_PAGE_MASK: bits 51:21 */
#define X86_PUD_PAGE_MASK 0x000fffffc0000000ull  /* PHYSICAL_PUD_PAGE_MASK: bits 51:30 */

/* ARM64: arch/arm64/include/asm/pgtable.h, pgtable-hwdef.h, pgtable-prot.h. */
#define ARM_VALID 0x1ull
#define ARM_TYPE_MASK 0x3ull
#define ARM_TYPE_TABLE 0x3ull
#define ARM_PRESENT_INVALID 0x800ull             /* PTE_PRESENT_INVALID overlays nG (6.10+) */
#define ARM_ADDR_LOW 0x0003ffffffffffffull       /* PTE_ADDR_LOW reaches bit 49; PAGE_SHIFT below */

/* p?d_none. x86 pgd_none (5-level) has no KNL erratum workaround: PGDs only point to tables. */
static inline int x_none(uint64_t v) { return (v & ~X86_KNL_ERRATUM) == 0; }
static inline int a_none(uint64_t v) { return v == 0; }
/* pte_present / pmd_present / pud_present. */
static inline int a_present(uint64_t v) { return (v & (ARM_VALID | ARM_PRESENT_INVALID)) != 0; }
static inline int a_not_table(uint64_t v) { return (v & ARM_TYPE_MASK) != ARM_TYPE_TABLE; }

static inline int pgd_none(uint64_t v) {
  if (R.folded[P4D]) return 0;                  /* pgtable-nop4d.h */
  return R.arch == ARCH_X86 ? v == 0 : a_none(v);
}
static inline int pgd_bad(uint64_t v) {
  if (R.folded[P4D]) return 0;
  /* x86 (PTI off): (flags & ~_PAGE_USER) != _KERNPG_TABLE; arm64: not a table descriptor. */
  return R.arch == ARCH_X86 ? (v & X86_FLAGS_MASK & ~X86_USER) != X86_KERNPG_TABLE : a_not_table(v);
}
static inline int p4d_none(uint64_t v) {
  if (R.folded[PUD]) return 0;                  /* pgtable-nopud.h */
  return R.arch == ARCH_X86 ? x_none(v) : a_none(v);
}
static inline int p4d_bad(uint64_t v) {
  if (R.folded[PUD]) return 0;
  /* x86: flags beyond _KERNPG_TABLE | _PAGE_USER (NX included, PTI off). */
  return R.arch == ARCH_X86 ? (v & X86_FLAGS_MASK & ~(X86_KERNPG_TABLE | X86_USER)) != 0 : a_not_table(v);
}
static inline int pud_none(uint64_t v) {
  if (R.folded[PMD]) return 0;                  /* pgtable-nopmd.h */
  return R.arch == ARCH_X86 ? x_none(v) : a_none(v);
}
static inline int pud_present(uint64_t v) {
  if (R.folded[PMD]) return 1;
  return R.arch == ARCH_X86 ? (v & X86_PRESENT) != 0 : a_present(v);
}
static inline int pud_leaf(uint64_t v) {
  if (R.folded[PMD] || !R.pud_leaf) return 0;
  /* x86 (6.12+): PSE alone; arm64: present and not a table. */
  return R.arch == ARCH_X86 ? (v & X86_PSE) != 0 : a_present(v) && a_not_table(v);
}
static inline int pmd_none(uint64_t v) { return R.arch == ARCH_X86 ? x_none(v) : a_none(v); }
static inline int pmd_present(uint64_t v) {
  /* x86: PRESENT | PROTNONE | PSE (a splitting huge pmd keeps PSE). */
  return R.arch == ARCH_X86 ? (v & (X86_PRESENT | X86_PROTNONE | X86_PSE)) != 0 : a_present(v);
}
static inline int pmd_leaf(uint64_t v) {
  return R.arch == ARCH_X86 ? (v & X86_PSE) != 0 : a_present(v) && a_not_table(v);
}
static inline int pte_present(uint64_t v) {
  /* x86: a PROT_NONE pte (PRESENT clear, PROTNONE set) is present to Linux. */
  return R.arch == ARCH_X86 ? (v & (X86_PRESENT | X86_PROTNONE)) != 0 : a_present(v);
}

/* __pte_to_phys for arm64: PTE_ADDR_LOW, ORed (as the C code ORs) with PTE_ADDR_HIGH shifted into
 * place. Linux >= 6.14 always builds the 52-bit helpers: with 64K pages bits [15:12] become
 * [51:48] whatever the VA size; with 4K/16K bits [9:8] become [51:50] only under LPA2 (without it
 * they are the SH bits, masked off by PTE_MAYBE_SHARED first). */
static inline uint64_t a_phys(uint64_t v) {
  uint64_t pa = v & ARM_ADDR_LOW & ~(R.page_size - 1);
  if (R.page_shift == 16) pa |= ((v >> 12) & 0xf) << 48;
  else if (R.pa52 == PA52_LPA2) pa |= ((v >> 8) & 0x3) << 50;
  return pa;
}

/* p?d_page_paddr: the next table. */
static inline uint64_t table_addr(uint64_t v) { return R.arch == ARCH_X86 ? (v & X86_PFN_MASK) : a_phys(v); }

/* Output address of a leaf at a logical level, aligned as p?d_pfn aligns it. x86 PROT_NONE leaves
 * hold the frame inverted (the L1TF mitigation, pgtable-invert.h). */
static inline uint64_t leaf_pa(int level, uint64_t v) {
  if (R.arch == ARCH_X86) {
    if ((v & X86_PRESENT) == 0 && v != 0) v = ~v;
    return v & (level == PTE ? X86_PFN_MASK : level == PMD ? X86_PMD_PAGE_MASK : X86_PUD_PAGE_MASK);
  }
  return a_phys(v) & ~((UINT64_C(1) << R.shift[level]) - 1);
}

/* ---- the walk (mm/pagewalk.c's shape) -------------------------------------------------------- */

struct walk;
typedef int (*entry_fn)(const uint64_t *entry, uint64_t addr, uint64_t next, struct walk *w);
typedef int (*hole_fn)(uint64_t addr, uint64_t next, int depth, struct walk *w);

/* struct mm_walk_ops: NULL means no callback. */
struct walk_ops {
  entry_fn pgd_entry, p4d_entry, pud_entry, pmd_entry, pte_entry;
  hole_fn pte_hole;
};

struct counter {
  uint64_t entries;
  uint64_t leaves;
  uint64_t by_level[7];      /* index hw level + 1 (ARM64 -1 ... x86 5) */
  uint64_t checksum;         /* wraps modulo 2^64 */
};

struct walk {
  const struct walk_ops *ops;
  struct counter *priv;
};

/* A table an entry points to, checked to lie inside memory (src/arch/pgtable.ts nextTable). */
static const uint64_t *next_table(const uint64_t *entry) {
  uint64_t t = table_addr(rd64(entry));
  if (t < phys_base || t > phys_end || phys_end - t < R.page_size) {
    die(1, "table entry at 0x%" PRIx64 " points to 0x%" PRIx64 ", outside memory [0x%" PRIx64 ", 0x%" PRIx64 ")",
        pa_of(entry), t, phys_base, phys_end);
  }
  return entry_at(t);
}

static inline uint64_t index_of(int level, uint64_t addr) { return (addr >> R.shift[level]) & (R.ptrs[level] - 1); }

/* p?d_addr_end: the boundary of this entry's span, or end; end 0 stands for 2^64. */
static inline uint64_t addr_end(int level, uint64_t addr, uint64_t end) {
  if (R.folded[level]) return end;
  uint64_t size = UINT64_C(1) << R.shift[level];
  uint64_t boundary = (addr + size) & ~(size - 1);
  return boundary - 1 < end - 1 ? boundary : end;
}

/* real_depth(): the level a hole is reported at once folded levels are taken out. */
static int real_depth(int depth) {
  if (depth == 3 && R.ptrs[PMD] == 1) depth = 2;
  if (depth == 2 && R.ptrs[PUD] == 1) depth = 1;
  if (depth == 1 && R.ptrs[P4D] == 1) depth = 0;
  return depth;
}

static int walk_pte_range(const uint64_t *pte, uint64_t addr, uint64_t end, struct walk *w) {
  const entry_fn pte_entry = w->ops->pte_entry;
  const uint64_t ps = R.page_size;
  int err;
  for (;;) {
    err = pte_entry(pte, addr, addr + ps, w);
    if (err) return err;
    addr += ps;
    if (addr == end) return 0;
    pte++;
  }
}

static int walk_pmd_range(const uint64_t *pud, uint64_t addr, uint64_t end, struct walk *w) {
  const struct walk_ops *ops = w->ops;
  const int depth = real_depth(3);
  const uint64_t *pmd = R.folded[PMD] ? pud : next_table(pud) + index_of(PMD, addr);
  uint64_t next;
  int err = 0;
  do {
    next = addr_end(PMD, addr, end);
    if (pmd_none(rd64(pmd))) {
      if (ops->pte_hole) err = ops->pte_hole(addr, next, depth, w);
      if (err) return err;
      goto cont;
    }
    if (ops->pmd_entry) err = ops->pmd_entry(pmd, addr, next, w);
    if (err) return err;
    if (!ops->pte_entry) goto cont;
    {
      uint64_t v = rd64(pmd);
      if (pmd_leaf(v) || !pmd_present(v)) goto cont;
    }
    /* pte_offset_kernel: kernel-table walks map the pte table without checking the pmd again. */
    err = walk_pte_range(next_table(pmd) + index_of(PTE, addr), addr, next, w);
    if (err) return err;
  cont:
    pmd++;
    addr = next;
  } while (addr != end);
  return err;
}

static int walk_pud_range(const uint64_t *p4d, uint64_t addr, uint64_t end, struct walk *w) {
  const struct walk_ops *ops = w->ops;
  const int depth = real_depth(2);
  const int lower = ops->pmd_entry || ops->pte_entry;
  const uint64_t *pud = R.folded[PUD] ? p4d : next_table(p4d) + index_of(PUD, addr);
  uint64_t next;
  int err = 0;
  do {
    next = addr_end(PUD, addr, end);
    if (pud_none(rd64(pud))) {
      if (ops->pte_hole) err = ops->pte_hole(addr, next, depth, w);
      if (err) return err;
      goto cont;
    }
    if (ops->pud_entry) err = ops->pud_entry(pud, addr, next, w);
    if (err) return err;
    if (!lower) goto cont;
    {
      uint64_t v = rd64(pud);
      if (pud_leaf(v) || !pud_present(v)) goto cont;
    }
    err = walk_pmd_range(pud, addr, next, w);
    if (err) return err;
  cont:
    pud++;
    addr = next;
  } while (addr != end);
  return err;
}

static int walk_p4d_range(const uint64_t *pgd, uint64_t addr, uint64_t end, struct walk *w) {
  const struct walk_ops *ops = w->ops;
  const int depth = real_depth(1);
  const int lower = ops->pud_entry || ops->pmd_entry || ops->pte_entry;
  const uint64_t *p4d = R.folded[P4D] ? pgd : next_table(pgd) + index_of(P4D, addr);
  uint64_t next;
  int err = 0;
  do {
    next = addr_end(P4D, addr, end);
    uint64_t v = rd64(p4d);
    /* p4d_none_or_clear_bad: a bad entry is reported and treated as none. mmulab clears it in
     * its copy of memory; this walker maps memory read-only, and a cleared entry is counted the
     * same way (as a hole) on any later visit, so the counts agree. */
    if (p4d_none(v) || p4d_bad(v)) {
      if (ops->pte_hole) err = ops->pte_hole(addr, next, depth, w);
      if (err) return err;
    } else {
      if (ops->p4d_entry) err = ops->p4d_entry(p4d, addr, next, w);
      if (err) return err;
      if (lower) err = walk_pud_range(p4d, addr, next, w);
      if (err) return err;
    }
    p4d++;
    addr = next;
  } while (addr != end);
  return err;
}

static int walk_pgd_range(uint64_t root, uint64_t addr, uint64_t end, struct walk *w) {
  const struct walk_ops *ops = w->ops;
  const int lower = ops->p4d_entry || ops->pud_entry || ops->pmd_entry || ops->pte_entry;
  const uint64_t *pgd = entry_at(root) + index_of(PGD, addr);
  uint64_t next;
  int err = 0;
  do {
    next = addr_end(PGD, addr, end);
    uint64_t v = rd64(pgd);
    if (pgd_none(v) || pgd_bad(v)) {
      if (ops->pte_hole) err = ops->pte_hole(addr, next, 0, w);
      if (err) return err;
    } else {
      if (ops->pgd_entry) err = ops->pgd_entry(pgd, addr, next, w);
      if (err) return err;
      if (lower) err = walk_p4d_range(pgd, addr, next, w);
      if (err) return err;
    }
    pgd++;
    addr = next;
  } while (addr != end);
  return err;
}

/* ---- the counting callbacks (src/walk/count.ts) ---------------------------------------------- */

static inline void count_leaf(struct counter *c, int level, uint64_t v) {
  c->leaves++;
  c->by_level[R.hw[level] + 1]++;
  c->checksum += leaf_pa(level, v) >> 12;
}

static int count_pte(const uint64_t *pte, uint64_t addr, uint64_t next, struct walk *w) {
  (void)addr;
  (void)next;
  struct counter *c = w->priv;
  uint64_t v = rd64(pte);
  c->entries++;
  if (pte_present(v)) count_leaf(c, PTE, v);
  return 0;
}

static int count_pmd(const uint64_t *pmd, uint64_t addr, uint64_t next, struct walk *w) {
  (void)addr;
  (void)next;
  struct counter *c = w->priv;
  uint64_t v = rd64(pmd);
  c->entries++;
  if (pmd_present(v) && pmd_leaf(v)) count_leaf(c, PMD, v);
  return 0;
}

static int count_pud(const uint64_t *pud, uint64_t addr, uint64_t next, struct walk *w) {
  (void)addr;
  (void)next;
  struct counter *c = w->priv;
  uint64_t v = rd64(pud);
  c->entries++;
  if (pud_leaf(v) && pud_present(v)) count_leaf(c, PUD, v);
  return 0;
}

static int count_table(const uint64_t *entry, uint64_t addr, uint64_t next, struct walk *w) {
  (void)entry;
  (void)addr;
  (void)next;
  w->priv->entries++;
  return 0;
}

static int count_hole(uint64_t addr, uint64_t next, int depth, struct walk *w) {
  (void)addr;
  (void)next;
  (void)depth;
  w->priv->entries++;
  return 0;
}

/* ---- machine.json: just enough JSON ---------------------------------------------------------- */

struct json {
  const char *p, *end;
  const char *file;
  const char *begin;
};

static void jfail(struct json *j, const char *what) {
  die(1, "%s: not valid JSON (%s at byte %ld)", j->file, what, (long)(j->p - j->begin));
}

static void jws(struct json *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int jpeek(struct json *j) {
  jws(j);
  return j->p < j->end ? (unsigned char)*j->p : -1;
}

static void jexpect(struct json *j, char c) {
  if (jpeek(j) != c) jfail(j, "unexpected character");
  j->p++;
}

/* A string into buf (escapes other than \" \\ \/ kept raw: the fields read here are plain ASCII). */
static void jstring(struct json *j, char *buf, size_t cap) {
  jexpect(j, '"');
  size_t n = 0;
  while (j->p < j->end && *j->p != '"') {
    char c = *j->p++;
    if (c == '\\') {
      if (j->p >= j->end) jfail(j, "unterminated string");
      c = *j->p++;
      if (c == 'u') {
        if (j->end - j->p < 4) jfail(j, "bad \\u escape");
        j->p += 4;
        c = '?';
      }
    }
    if (buf && n + 1 < cap) buf[n++] = c;
  }
  if (j->p >= j->end) jfail(j, "unterminated string");
  j->p++;
  if (buf) buf[n] = 0;
}

static void jskip(struct json *j);

static void jskip_container(struct json *j, char open, char close) {
  jexpect(j, open);
  if (jpeek(j) == close) {
    j->p++;
    return;
  }
  for (;;) {
    if (open == '{') {
      jstring(j, NULL, 0);
      jexpect(j, ':');
    }
    jskip(j);
    int c = jpeek(j);
    if (c == ',') {
      j->p++;
      continue;
    }
    if (c == close) {
      j->p++;
      return;
    }
    jfail(j, "expected ',' or a closing bracket");
  }
}

static void jskip(struct json *j) {
  int c = jpeek(j);
  if (c == '"') jstring(j, NULL, 0);
  else if (c == '{') jskip_container(j, '{', '}');
  else if (c == '[') jskip_container(j, '[', ']');
  else if (c == -1) jfail(j, "unexpected end");
  else {
    const char *s = j->p;
    while (j->p < j->end && strchr("+-.0123456789eEtruefalsn", *j->p)) j->p++;
    if (j->p == s) jfail(j, "unexpected character");
  }
}

/* A value as kind 's' (string into buf) or 'n' (number text into buf) or 'o' (object: not read). */
static int jvalue_kind(struct json *j) {
  int c = jpeek(j);
  if (c == '"') return 's';
  if (c == '{') return 'o';
  if (c == '-' || (c >= '0' && c <= '9')) return 'n';
  return 'x';
}

static void jnumber_text(struct json *j, char *buf, size_t cap) {
  jws(j);
  size_t n = 0;
  while (j->p < j->end && strchr("+-.0123456789eE", *j->p)) {
    if (n + 1 < cap) buf[n++] = *j->p;
    j->p++;
  }
  buf[n] = 0;
}

/* A field as image.ts's parseHexField takes it: "0x…" (< 2^64) or a non-negative safe integer. */
static uint64_t jhex_field(struct json *j, const char *where) {
  char buf[128];
  int kind = jvalue_kind(j);
  if (kind == 'n') {
    jnumber_text(j, buf, sizeof buf);
    char *endp;
    errno = 0;
    unsigned long long v = strtoull(buf, &endp, 10);
    if (*endp || errno || buf[0] == '-' || v > 9007199254740991ull) {
      die(1, "machine.json %s: expected a hex string \"0x…\", got %s", where, buf);
    }
    return v;
  }
  if (kind != 's') {
    const char *s = j->p;
    jskip(j);
    die(1, "machine.json %s: expected a hex string \"0x…\", got %.*s", where, (int)(j->p - s), s);
  }
  jstring(j, buf, sizeof buf);
  if (buf[0] != '0' || buf[1] != 'x' || !buf[2]) die(1, "machine.json %s: expected a hex string \"0x…\", got \"%s\"", where, buf);
  uint64_t v = 0;
  for (const char *q = buf + 2; *q; q++) {
    int d;
    if (*q >= '0' && *q <= '9') d = *q - '0';
    else if (*q >= 'a' && *q <= 'f') d = *q - 'a' + 10;
    else if (*q >= 'A' && *q <= 'F') d = *q - 'A' + 10;
    else die(1, "machine.json %s: expected a hex string \"0x…\", got \"%s\"", where, buf);
    if (v >> 60) die(1, "machine.json %s: %s does not fit in 64 bits", where, buf);
    v = v << 4 | (uint64_t)d;
  }
  return v;
}

#define MAXREGS 32
struct image_json {
  char arch[32];
  int have_format;
  char format[64];
  uint64_t phys_base;
  int nregs;
  char reg_name[MAXREGS][32];
  uint64_t reg_val[MAXREGS];
  int have_maxphyaddr;
  char maxphyaddr[64];
};

static void parse_machine_json(const char *path, const char *text, size_t len, struct image_json *out) {
  struct json j = {text, text + len, path, text};
  memset(out, 0, sizeof *out);
  int have_regs = 0;
  if (jpeek(&j) != '{') die(1, "%s: expected a JSON object", path);
  j.p++;
  if (jpeek(&j) == '}') j.p++;
  else
    for (;;) {
      char key[64];
      jstring(&j, key, sizeof key);
      jexpect(&j, ':');
      if (!strcmp(key, "arch")) {
        if (jvalue_kind(&j) != 's') die(1, "machine.json arch: expected \"x86_64\" or \"arm64\"");
        jstring(&j, out->arch, sizeof out->arch);
      } else if (!strcmp(key, "format")) {
        if (jvalue_kind(&j) != 's') die(1, "machine.json format: expected \"mmulab-image/1\"");
        out->have_format = 1;
        jstring(&j, out->format, sizeof out->format);
      } else if (!strcmp(key, "phys_base")) {
        out->phys_base = jhex_field(&j, "phys_base");
      } else if (!strcmp(key, "registers")) {
        if (jvalue_kind(&j) != 'o') die(1, "machine.json registers: expected an object of hex strings");
        have_regs = 1;
        jexpect(&j, '{');
        if (jpeek(&j) == '}') j.p++;
        else
          for (;;) {
            char name[32], where[64];
            jstring(&j, name, sizeof name);
            jexpect(&j, ':');
            snprintf(where, sizeof where, "registers.%s", name);
            uint64_t v = jhex_field(&j, where);
            if (out->nregs < MAXREGS) {
              strcpy(out->reg_name[out->nregs], name);
              out->reg_val[out->nregs++] = v;
            }
            int c = jpeek(&j);
            if (c == ',') {
              j.p++;
              continue;
            }
            jexpect(&j, '}');
            break;
          }
      } else if (!strcmp(key, "cpu")) {
        if (jvalue_kind(&j) != 'o') die(1, "machine.json cpu: expected an object");
        jexpect(&j, '{');
        if (jpeek(&j) == '}') j.p++;
        else
          for (;;) {
            char name[64];
            jstring(&j, name, sizeof name);
            jexpect(&j, ':');
            if (!strcmp(name, "maxphyaddr")) {
              out->have_maxphyaddr = 1;
              if (jvalue_kind(&j) == 'n') jnumber_text(&j, out->maxphyaddr, sizeof out->maxphyaddr);
              else {
                jskip(&j);
                strcpy(out->maxphyaddr, "?");
              }
            } else jskip(&j);
            int c = jpeek(&j);
            if (c == ',') {
              j.p++;
              continue;
            }
            jexpect(&j, '}');
            break;
          }
      } else {
        jskip(&j); /* "processes" and anything else: not needed to walk tables */
      }
      int c = jpeek(&j);
      if (c == ',') {
        j.p++;
        continue;
      }
      jexpect(&j, '}');
      break;
    }
  if (!have_regs) die(1, "machine.json registers: expected an object of hex strings");
}

static int find_reg(const struct image_json *ij, const char *name, uint64_t *v) {
  for (int i = ij->nregs - 1; i >= 0; i--)
    if (!strcmp(ij->reg_name[i], name)) {
      *v = ij->reg_val[i];
      return 1;
    }
  return 0;
}

static uint64_t require_reg(const struct image_json *ij, const char *name) {
  uint64_t v;
  if (!find_reg(ij, name, &v)) die(1, "machine.json registers.%s: missing (required for this architecture)", name);
  return v;
}

static inline uint64_t bits(uint64_t v, int msb, int lsb) { return (v >> lsb) & ((UINT64_C(2) << (msb - lsb)) - 1); }

/* ---- geometry (src/arch/geometry.ts) --------------------------------------------------------- */

/* Fill shifts, table sizes, folding and hardware levels once levels, va_bits and page_shift are set. */
static void finish_geometry(int hw_top, int hw_step) {
  int phys = -1, n = 0;
  for (int l = 0; l < NLEVELS; l++) {
    if (!R.folded[l]) {
      phys = l;
      R.hw[l] = hw_top + n * hw_step;
      n++;
    } else {
      R.hw[l] = R.hw[phys];
    }
  }
}

static void x86_geometry(int la57) {
  R.arch = ARCH_X86;
  R.levels = la57 ? 5 : 4;
  snprintf(R.name, sizeof R.name, "x86_64-%dlevel", R.levels);
  R.va_bits = la57 ? 57 : 48;
  R.page_shift = 12;
  int sh[NLEVELS] = {la57 ? 48 : 39, 39, 30, 21, 12};
  memcpy(R.shift, sh, sizeof sh);
  for (int l = 0; l < NLEVELS; l++) R.ptrs[l] = 512;
  if (!la57) {
    R.folded[P4D] = 1;
    R.ptrs[P4D] = 1;
  }
  R.pud_leaf = 1;
  R.pa52 = PA52_NONE;
  finish_geometry(R.levels, -1);
}

/* ARM64_HW_PGTABLE_LEVEL_SHIFT(n) = (PAGE_SHIFT - 3) * (4 - n) + 3 */
static int arm_level_shift(int page_shift, int n) { return (page_shift - 3) * (4 - n) + 3; }

static int arm64_levels(int granule_k, int va_bits) {
  /* arch/arm64/Kconfig PGTABLE_LEVELS for the configurations Linux builds */
  static const int table[][3] = {{4, 39, 3},  {4, 48, 4},  {4, 52, 5},  {16, 36, 2}, {16, 47, 3},
                                 {16, 48, 4}, {16, 52, 4}, {64, 42, 2}, {64, 48, 3}, {64, 52, 3}};
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (table[i][0] == granule_k && table[i][1] == va_bits) return table[i][2];
  return 0;
}

static void arm64_geometry(int granule_k, int va_bits, int levels) {
  R.arch = ARCH_ARM64;
  R.levels = levels;
  snprintf(R.name, sizeof R.name, "arm64-%dk-%d", granule_k, va_bits);
  R.va_bits = va_bits;
  R.page_shift = granule_k == 4 ? 12 : granule_k == 16 ? 14 : 16;
  int ps = R.page_shift;
  uint64_t per_table = UINT64_C(1) << (ps - 3);
  int pgd_shift = arm_level_shift(ps, 4 - levels);
  R.folded[P4D] = levels < 5;
  R.folded[PUD] = levels < 4;
  R.folded[PMD] = levels < 3;
  /* A folded level takes its parent's shift (PUD_SHIFT = PGDIR_SHIFT under pgtable-nopud.h). */
  R.shift[PGD] = pgd_shift;
  R.shift[P4D] = levels > 4 ? arm_level_shift(ps, 0) : pgd_shift;
  R.shift[PUD] = levels > 3 ? arm_level_shift(ps, 1) : R.shift[P4D];
  R.shift[PMD] = levels > 2 ? arm_level_shift(ps, 2) : R.shift[PUD];
  R.shift[PTE] = ps;
  /* PTRS_PER_PGD = 1 << (VA_BITS - PGDIR_SHIFT): the top table may be smaller than a granule. */
  R.ptrs[PGD] = UINT64_C(1) << (va_bits - pgd_shift);
  R.ptrs[P4D] = levels > 4 ? per_table : 1;
  R.ptrs[PUD] = levels > 3 ? per_table : 1;
  R.ptrs[PMD] = levels > 2 ? per_table : 1;
  R.ptrs[PTE] = per_table;
  R.pud_leaf = granule_k == 4 && levels > 2; /* pud_sect_supported(): 4K only */
  R.pa52 = va_bits == 52 ? (granule_k == 64 ? PA52_LPA : PA52_LPA2) : PA52_NONE;
  finish_geometry(4 - levels, 1);
}

/* ---- the regime from the registers (src/mm/image.ts x86Regime / arm64Regime) ------------------ */

static void x86_regime(const struct image_json *ij, int maxphyaddr) {
  uint64_t cr0 = require_reg(ij, "cr0"), cr3 = require_reg(ij, "cr3"), cr4 = require_reg(ij, "cr4"),
           efer = require_reg(ij, "efer");
  if (!bits(cr0, 31, 31)) die(1, "machine.json registers.cr0: PG (bit 31) is 0 — paging is disabled, nothing to translate");
  if (!bits(cr4, 5, 5)) die(1, "machine.json registers.cr4: PAE (bit 5) must be 1 for 4- or 5-level paging");
  if (!bits(efer, 8, 8)) die(1, "machine.json registers.efer: LME (bit 8) must be 1 for IA-32e paging");
  x86_geometry((int)bits(cr4, 12, 12)); /* CR4.LA57 */
  uint64_t table = cr3 & ((UINT64_C(1) << maxphyaddr) - 1) & ~UINT64_C(0xfff);
  uint64_t half = UINT64_C(1) << (R.va_bits - 1);
  /* One root holds both canonical halves (SDM Vol.3A 4.5). */
  roots[0] = (struct root){"cr3", table, 0, half - 1};
  roots[1] = (struct root){"cr3", table, (uint64_t)0 - half, UINT64_MAX};
  nroots = 2;
}

static void arm64_regime(const struct image_json *ij) {
  uint64_t tcr = require_reg(ij, "tcr_el1");
  uint64_t sctlr = 1;
  find_reg(ij, "sctlr_el1", &sctlr);
  if (!bits(sctlr, 0, 0)) die(1, "machine.json registers.sctlr_el1: M (bit 0) is 0 — the stage 1 MMU is off");
  if (bits(sctlr, 25, 25)) {
    die(1, "machine.json registers.sctlr_el1: EE (bit 25) = 1 (big-endian table walks) is supported by translate and trace only, not by the Linux page-walk commands");
  }
  int t0sz = (int)bits(tcr, 5, 0), epd0 = (int)bits(tcr, 7, 7), tg0 = (int)bits(tcr, 15, 14);
  int t1sz = (int)bits(tcr, 21, 16), epd1 = (int)bits(tcr, 23, 23), tg1 = (int)bits(tcr, 31, 30);
  /* TCR_EL1.TG0 and TG1 encode the granules differently (Arm ARM D19 TCR_EL1). */
  static const int g0_of[4] = {4, 64, 16, 0};
  static const int g1_of[4] = {0, 16, 4, 64};
  int g0 = g0_of[tg0], g1 = g1_of[tg1];
  if (!epd0 && !g0) die(1, "machine.json registers.tcr_el1: TG0 = %d is a reserved granule encoding", tg0);
  if (!epd1 && !g1) die(1, "machine.json registers.tcr_el1: TG1 = %d is a reserved granule encoding", tg1);
  if (!epd0 && !epd1 && (g0 != g1 || t0sz != t1sz)) {
    die(1, "machine.json registers.tcr_el1: TTBR0 (%dk, T0SZ %d) and TTBR1 (%dk, T1SZ %d) differ; mmulab models one granule and VA size per machine, as Linux does",
        g0, t0sz, g1, t1sz);
  }
  int granule = epd0 ? g1 : g0;
  int va_bits = 64 - (epd0 ? t1sz : t0sz);
  int levels = arm64_levels(granule, va_bits);
  if (!levels) {
    die(1, "machine.json registers.tcr_el1: %d-bit VA (T%dSZ %d) with the %dk granule is not a configuration Linux builds", va_bits,
        epd0 ? 1 : 0, 64 - va_bits, granule);
  }
  arm64_geometry(granule, va_bits, levels);
  if (R.pa52 == PA52_LPA2 && !bits(tcr, 59, 59)) {
    die(1, "machine.json registers.tcr_el1: 52-bit VA with a 4K/16K granule needs DS (bit 59) = 1 (LPA2)");
  }
  uint64_t span_last = va_bits == 64 ? UINT64_MAX : (UINT64_C(1) << va_bits) - 1;
  nroots = 0;
  if (!epd0) {
    uint64_t ttbr = require_reg(ij, "ttbr0_el1");
    uint64_t pa = ttbr & UINT64_C(0x0000fffffffffffe); /* BADDR[47:1] */
    if (R.pa52 != PA52_NONE) pa = (pa & ~UINT64_C(0x3c)) | (bits(ttbr, 5, 2) << 48); /* BADDR[51:48] in TTBR[5:2] */
    roots[nroots++] = (struct root){"ttbr0_el1", pa, 0, span_last};
  }
  if (!epd1) {
    uint64_t ttbr = require_reg(ij, "ttbr1_el1");
    uint64_t pa = ttbr & UINT64_C(0x0000fffffffffffe);
    if (R.pa52 != PA52_NONE) pa = (pa & ~UINT64_C(0x3c)) | (bits(ttbr, 5, 2) << 48);
    roots[nroots++] = (struct root){"ttbr1_el1", pa, UINT64_MAX - span_last, UINT64_MAX};
  }
}

/* ---- loading --------------------------------------------------------------------------------- */

static char *read_text(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) die(1, "%s: not found (an image folder holds machine.json and memory.bin)", path);
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) die(1, "out of memory");
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (n < cap) break;
    cap *= 2;
    buf = realloc(buf, cap);
  }
  fclose(f);
  *len = n;
  return buf;
}

/* What load_image read, kept for translate mode's regime (walk mode does not look at it again). */
static struct image_json loaded_json;
static int loaded_maxphyaddr = 52;

static void load_image(const char *dir) {
  char jpath[4096], mpath[4096];
  snprintf(jpath, sizeof jpath, "%s/machine.json", dir);
  snprintf(mpath, sizeof mpath, "%s/memory.bin", dir);
  size_t len;
  char *text = read_text(jpath, &len);
  struct image_json ij;
  parse_machine_json(jpath, text, len, &ij);
  free(text);
  if (ij.have_format && strcmp(ij.format, "mmulab-image/1")) {
    die(1, "machine.json format: expected \"mmulab-image/1\", got \"%s\"", ij.format);
  }
  if (strcmp(ij.arch, "x86_64") && strcmp(ij.arch, "arm64")) die(1, "machine.json arch: expected \"x86_64\" or \"arm64\", got \"%s\"", ij.arch);
  phys_base = ij.phys_base;
  if (phys_base % 4096) die(1, "machine.json phys_base: 0x%" PRIx64 " is not 4 KiB aligned", phys_base);
  int maxphyaddr = 52;
  if (ij.have_maxphyaddr) {
    char *endp;
    long m = strtol(ij.maxphyaddr, &endp, 10);
    if (*endp || endp == ij.maxphyaddr || m < 36 || m > 52) {
      die(1, "machine.json cpu.maxphyaddr: expected an integer 36 … 52, got %s", ij.maxphyaddr);
    }
    maxphyaddr = (int)m;
  }
  if (!strcmp(ij.arch, "x86_64")) x86_regime(&ij, maxphyaddr);
  else arm64_regime(&ij);
  R.page_size = UINT64_C(1) << R.page_shift;
  loaded_json = ij;
  loaded_maxphyaddr = maxphyaddr;

  int fd = open(mpath, O_RDONLY);
  if (fd < 0) die(1, "%s: not found (an image folder holds machine.json and memory.bin)", mpath);
  struct stat st;
  if (fstat(fd, &st) != 0) die(1, "%s: %s", mpath, strerror(errno));
  if (st.st_size == 0 || st.st_size % 4096) {
    die(1, "%s: %lld bytes; expected a non-zero multiple of 4096 (whole frames)", mpath, (long long)st.st_size);
  }
  mem_size = (uint64_t)st.st_size;
  void *m = mmap(NULL, mem_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (m == MAP_FAILED) die(1, "%s: mmap: %s", mpath, strerror(errno));
  close(fd);
  mem = m;
  phys_end = phys_base + mem_size;
  /* Fault every page in now: loading is not timed (mmulab reads memory.bin into its buffer before
   * its walk), so the walk must not pay for first-touch page faults either. */
  {
    volatile uint8_t sink = 0;
    for (uint64_t off = 0; off < mem_size; off += 4096) sink ^= mem[off];
    (void)sink;
  }

  for (int i = 0; i < nroots; i++) {
    uint64_t t = roots[i].table, bytes = R.ptrs[PGD] * 8;
    if (t < phys_base || t > phys_end || phys_end - t < bytes) {
      die(1, "machine.json registers.%s: root table at 0x%" PRIx64 " is outside memory [0x%" PRIx64 ", 0x%" PRIx64 ")", roots[i].name,
          t, phys_base, phys_end);
    }
    /* mmulab reads descriptors only at 8-byte aligned addresses (a PhysAddrError otherwise). */
    if (t % 8) die(1, "machine.json registers.%s: root table at 0x%" PRIx64 " is not 8-byte aligned", roots[i].name, t);
  }
}

/* ---- translate mode: the hardware walk --------------------------------------------------------- */

/*
 * `walker DIR --translate FILE` leaves the Linux view above aside and does, for each VA in FILE,
 * the walk the MMU itself makes on a TLB miss: a user-mode (CPL 3 / EL0) data read, no TLB, and no
 * accessed/dirty or Access-flag update (mmulab's side of the comparison is a debugger walk, which
 * writes nothing either). Each VA gives a physical address or a fault. The rules are the manuals',
 * decided as src/arch/x86_64/mmu.ts and src/arch/arm64/mmu.ts decide them, so both sides can be
 * held to the same checksum. Only a read is modelled: R/W, XD, UXN/PXN, WXN and PAN restrict
 * writes, fetches and EL1 accesses, none of which this mode performs.
 */

/* x86-64: SDM Vol.3A §4.5 (4-level and 5-level paging), Tables 4-12 … 4-20. */
struct x86_xlat {
  uint64_t root;             /* CR3[MAXPHYADDR-1:12] (§4.5.2) */
  int levels;                /* 4, or 5 with CR4.LA57 */
  int va_bits;               /* 48 or 57: the canonical-address check */
  uint64_t addr_mask;        /* entry bits MAXPHYADDR-1:12: the next table or the page frame */
  uint64_t rsvd;             /* bits 51:MAXPHYADDR, and XD (bit 63) when IA32_EFER.NXE = 0 (§4.5.4) */
  int pke;                   /* CR4.PKE: user-mode data accesses consult PKRU (§4.6.2) */
  uint32_t pkru;
};
static struct x86_xlat XT;

/* ARM64: Arm ARM D8.2 (granules, lookup levels), D8.3 (descriptors), D8.4 (access control). One
 * half of the VA space each: [0] TTBR0_EL1, [1] TTBR1_EL1. */
struct arm_xlat {
  int txsz_fault;            /* TxSZ outside [min, 39]: every access faults (AArch64.S1TxSZFaults) */
  uint64_t top_mask;         /* VA bits [63:ia] ([55:ia] with TBIn) that must all equal bit 55 */
  int enabled;               /* TCR_EL1.EPDn = 0 */
  int base_fault;            /* the start table lies beyond the output address size */
  uint64_t base;             /* the start table (AArch64.S1TTBaseAddress) */
  int start_level, start_shift;
  uint64_t start_mask;       /* index mask of the start table (it may hold fewer than a granule's entries) */
  int stride;                /* granule bits - 3: VA bits resolved per level */
  uint64_t stride_mask;
  uint64_t table_bytes;      /* a granule: the size of every table below the start level */
  uint64_t addr_mask;        /* descriptor address field: bits [47:granule], [49:granule] with DS */
  int hi52;                  /* OA[51:48] from bits 15:12 (1: 64KB with FEAT_LPA), OA[51:50] from 9:8 (2: DS) */
  uint64_t oa_limit;         /* 2^(output address size) */
  int block_min;             /* shallowest level a block descriptor is allowed at (deepest is 2) */
  int hpd;                   /* TCR_EL1.HPDn: APTable ignored */
  int ha;                    /* TCR_EL1.HA: hardware Access flag management, so AF = 0 does not fault */
};
static struct arm_xlat AT[2];

/* A table a translation steps into must lie inside memory: the same error as next_table's. */
static inline void xlat_check_table(uint64_t entry_pa, uint64_t t, uint64_t bytes) {
  if (t < phys_base || t > phys_end || phys_end - t < bytes) {
    die(1, "table entry at 0x%" PRIx64 " points to 0x%" PRIx64 ", outside memory [0x%" PRIx64 ", 0x%" PRIx64 ")", entry_pa, t, phys_base,
        phys_end);
  }
}

static void x86_xlat_regime(void) {
  uint64_t cr4 = require_reg(&loaded_json, "cr4"), efer = require_reg(&loaded_json, "efer"), pkru = 0;
  find_reg(&loaded_json, "pkru", &pkru);
  int m = loaded_maxphyaddr;
  XT.root = roots[0].table; /* x86_regime: CR3 masked to MAXPHYADDR, 4 KiB aligned */
  XT.levels = R.levels;
  XT.va_bits = R.va_bits;
  XT.addr_mask = ((UINT64_C(1) << m) - 1) & ~UINT64_C(0xfff);
  XT.rsvd = ((UINT64_C(1) << 52) - 1) & ~((UINT64_C(1) << m) - 1);
  if (!bits(efer, 11, 11)) XT.rsvd |= UINT64_C(1) << 63; /* XD is reserved without NXE (Table 4-15 …) */
  XT.pke = (int)bits(cr4, 22, 22);
  XT.pkru = (uint32_t)pkru;
}

/*
 * One x86-64 walk for a user-mode read (§4.5, §4.6.1). Returns 1 with *pa set, or 0 for a fault:
 * a non-canonical address (#GP on hardware), P = 0 (§4.7), a reserved bit set (RSVD #PF), U/S = 0
 * at some level, or a PKRU access-disable for the page's key.
 */
static inline int x86_translate(uint64_t va, uint64_t *pa) {
  /* §4.5.1 / §3.3.7.1: canonical means bits 63:47 (63:56 with LA57) all equal. */
  int64_t sign = (int64_t)va >> (XT.va_bits - 1);
  if (sign != 0 && sign != -1) return 0;
  uint64_t table = XT.root;
  uint64_t us = X86_USER;
  int level = XT.levels;
  int shift = 12 + 9 * (level - 1);
  uint64_t e;
  for (;;) {
    const uint64_t *p = entry_at(table) + ((va >> shift) & 511);
    e = rd64(p);
    if (!(e & X86_PRESENT)) return 0;
    if (e & XT.rsvd) return 0;
    int leaf = level == 1; /* a PTE always maps a page; its bit 7 is PAT, not PS */
    if (level > 1 && (e & X86_PSE)) {
      /* PS is reserved in a PML5E/PML4E (Tables 4-14, 4-15); a 1-GByte PDPTE has bits 29:13
       * reserved (Table 4-16), a 2-MByte PDE bits 20:13 (Table 4-18). */
      if (level >= 4 || (level == 3 && (e & UINT64_C(0x3fffe000))) || (level == 2 && (e & UINT64_C(0x1fe000)))) return 0;
      leaf = 1;
    }
    us &= e; /* §4.6.1: U/S is ANDed over every level */
    if (leaf) break;
    table = e & XT.addr_mask;
    xlat_check_table(pa_of(p), table, 4096);
    level--;
    shift -= 9;
  }
  if (!us) return 0; /* a supervisor-mode address: no user-mode access */
  /* §4.6.2: with CR4.PKE, PKRU.AD for the leaf's key (bits 62:59) forbids every user data access. */
  if (XT.pke && ((XT.pkru >> (2 * ((e >> 59) & 0xf))) & 1)) return 0;
  uint64_t in_page = (UINT64_C(1) << shift) - 1;
  *pa = (e & XT.addr_mask & ~in_page) | (va & in_page);
  return 1;
}

/* ID_AA64MMFR0_EL1.PARange as bits (0b0111 needs FEAT_D128: 52 here, as mmulab caps it). */
static const int arm_pa_range_bits[8] = {32, 36, 40, 42, 44, 48, 52, 52};

/*
 * One half's translation parameters from TCR_EL1 and TTBRn_EL1 (AArch64.GetS1TTWParams), as
 * src/arch/arm64/mmu.ts derives them for an image without ID registers: the implementation then
 * has every feature mmulab models (PAMax 52, FEAT_LPA, FEAT_LPA2 for 4KB and 16KB, FEAT_LVA,
 * FEAT_HAFDBS). Walk mode has already refused the configurations Linux does not build.
 */
static void arm_xlat_half(struct arm_xlat *h, int half, uint64_t tcr) {
  int txsz = (int)(half ? bits(tcr, 21, 16) : bits(tcr, 5, 0));
  int tg = (int)(half ? bits(tcr, 31, 30) : bits(tcr, 15, 14));
  int tbi = (int)bits(tcr, half ? 38 : 37, half ? 38 : 37);
  h->enabled = !bits(tcr, half ? 23 : 7, half ? 23 : 7);
  h->hpd = (int)bits(tcr, half ? 42 : 41, half ? 42 : 41);
  h->ha = (int)bits(tcr, 39, 39);
  /* TG0: 00 4KB, 01 64KB, 10 16KB; TG1: 01 16KB, 10 4KB, 11 64KB; reserved values: 4KB, as mmulab. */
  int g = half == 0 ? (tg == 1 ? 16 : tg == 2 ? 14 : 12) : (tg == 1 ? 14 : tg == 3 ? 16 : 12);
  int ds = (g == 12 || g == 14) && bits(tcr, 59, 59); /* TCR_EL1.DS (FEAT_LPA2) */
  h->stride = g - 3;
  h->stride_mask = (UINT64_C(1) << h->stride) - 1;
  h->table_bytes = UINT64_C(1) << g;
  /* AArch64.S1MinTxSZ / MaxTxSZ: 12 with DS or the 64KB granule (FEAT_LVA), else 16; at most 39. */
  int min_txsz = ds || g == 16 ? 12 : 16;
  h->txsz_fault = txsz < min_txsz || txsz > 39;
  int ia = 64 - (txsz < min_txsz ? min_txsz : txsz > 39 ? 39 : txsz);
  /* AArch64.S1StartLevel: 4 - RoundUp((ia - granule) / stride). */
  h->start_level = 4 - (ia - 4) / h->stride;
  h->start_shift = g + h->stride * (3 - h->start_level);
  h->start_mask = (UINT64_C(1) << (ia - h->start_shift)) - 1;
  /* AArch64.VAIsOutOfRange: bits [63:ia], or [55:ia] when TBIn ignores the top byte (data accesses). */
  h->top_mask = ~((UINT64_C(1) << ia) - 1);
  if (tbi) h->top_mask &= UINT64_C(0x00ffffffffffffff);
  /* AArch64.PhysicalAddressSize: TCR_EL1.IPS, at most PAMax (52). */
  int ips = (int)bits(tcr, 34, 32);
  h->oa_limit = UINT64_C(1) << arm_pa_range_bits[ips];
  /* AArch64.NextTableBase / LeafBase: the descriptor's address field and where OA[51:48] live. */
  h->addr_mask = (ds ? UINT64_C(0x0003ffffffffffff) : UINT64_C(0x0000ffffffffffff)) & ~(h->table_bytes - 1);
  h->hi52 = g == 16 ? 1 : ds ? 2 : 0;
  /* AArch64.BlockDescSupported: 4KB level 1 (0 with DS), 16KB level 2 (1 with DS), 64KB level 1
   * (FEAT_LPA); level 2 always. */
  h->block_min = g == 12 ? (ds ? 0 : 1) : g == 14 ? (ds ? 1 : 2) : 1;
  /* AArch64.S1TTBaseAddress: BADDR aligned to the start table's size, at least 64 bytes when
   * TTBR[5:2] carries BADDR[51:48]. */
  const char *name = half ? "ttbr1_el1" : "ttbr0_el1";
  uint64_t ttbr = 0;
  h->base = 0;
  h->base_fault = 0;
  if (!find_reg(&loaded_json, name, &ttbr)) {
    if (h->enabled) die(1, "machine.json registers.%s: missing (required for this architecture)", name);
    return;
  }
  int levels = 3 - h->start_level;
  int tsize = ia - (levels * h->stride + g) + 3;
  uint64_t base;
  if (ds || (g == 16 && ips == 6)) {
    if (tsize < 6) tsize = 6;
    base = (bits(ttbr, 5, 2) << 48) | (ttbr & UINT64_C(0x0000ffffffffffc0));
  } else {
    base = ttbr & UINT64_C(0x0000fffffffffffe);
  }
  h->base = base & ~((UINT64_C(1) << tsize) - 1);
  h->base_fault = h->base >= h->oa_limit;
  if (h->enabled && !h->base_fault) {
    uint64_t t = h->base, bytes = (h->start_mask + 1) * 8;
    if (t < phys_base || t > phys_end || phys_end - t < bytes) {
      die(1, "machine.json registers.%s: root table at 0x%" PRIx64 " is outside memory [0x%" PRIx64 ", 0x%" PRIx64 ")", name, t, phys_base,
          phys_end);
    }
  }
}

/* A descriptor's output address (next table or leaf base before alignment): AArch64.NextTableBase. */
static inline uint64_t arm_oa(const struct arm_xlat *h, uint64_t d) {
  uint64_t oa = d & h->addr_mask;
  if (h->hi52 == 1) oa |= ((d >> 12) & 0xf) << 48;
  else if (h->hi52 == 2) oa |= ((d >> 8) & 0x3) << 50;
  return oa;
}

/*
 * One ARM64 stage 1 walk for an EL0 data read (AArch64.S1Translate, S1Walk, S1CheckPermissions).
 * Returns 1 with *pa set, or 0 for a fault: Translation (TxSZ or VA out of range, EPDn, an invalid
 * descriptor, a block where none is allowed, a reserved level 3 descriptor), Address size (a table
 * or output address beyond IPS), Access flag (AF = 0 without TCR_EL1.HA), Permission (AP[1] = 0 or
 * APTable[0] = 1 somewhere above: D8.4, no EL0 access).
 */
static inline int arm_translate(uint64_t va, uint64_t *pa) {
  int upper = (int)((va >> 55) & 1); /* D8.1: VA bit 55 selects TTBR0 or TTBR1 */
  const struct arm_xlat *h = &AT[upper];
  if (h->txsz_fault) return 0;
  if ((va & h->top_mask) != (upper ? h->top_mask : 0)) return 0;
  if (!h->enabled || h->base_fault) return 0;
  uint64_t table = h->base, mask = h->start_mask;
  int level = h->start_level, shift = h->start_shift;
  uint64_t no_el0 = 0; /* APTable[0] (bit 61) of any table descriptor on the way */
  for (;;) {
    const uint64_t *p = entry_at(table) + ((va >> shift) & mask);
    uint64_t d = rd64(p);
    if (!(d & ARM_VALID)) return 0;
    uint64_t oa = arm_oa(h, d);
    if ((d & 2) && level < 3) { /* a table descriptor (D8.3.1) */
      if (oa >= h->oa_limit) return 0;
      if (!h->hpd) no_el0 |= (d >> 61) & 1;
      xlat_check_table(pa_of(p), oa, h->table_bytes);
      table = oa;
      level++;
      shift -= h->stride;
      mask = h->stride_mask;
      continue;
    }
    /* 0b01 is a block where blocks are allowed; at level 3 it is reserved (a page is 0b11). */
    if (level == 3 ? !(d & 2) : level < h->block_min) return 0;
    uint64_t in_page = (UINT64_C(1) << shift) - 1;
    oa &= ~in_page;
    if (oa >= h->oa_limit) return 0;
    if (!(d & 0x400) && !h->ha) return 0; /* AF, bit 10 */
    if (!(d & 0x40) || no_el0) return 0;  /* AP[1], bit 6: EL0 access */
    *pa = oa | (va & in_page);
    return 1;
  }
}

/* Read FILE's little-endian u64 VAs, translate each, time only the loop, print one JSON line. */
static void run_translate(const char *file) {
  FILE *f = fopen(file, "rb");
  if (!f) die(1, "%s: %s", file, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0) die(1, "%s: %s", file, strerror(errno));
  if (st.st_size == 0 || st.st_size % 8) {
    die(1, "%s: %lld bytes; expected a non-zero multiple of 8 (little-endian u64 VAs)", file, (long long)st.st_size);
  }
  size_t n = (size_t)st.st_size / 8;
  uint64_t *vas = malloc((size_t)st.st_size);
  if (!vas) die(1, "out of memory for %zu VAs", n);
  if (fread(vas, 8, n, f) != n) die(1, "%s: short read", file);
  fclose(f);
  /* Reading the file touched every page of it; rd64 also puts the VAs in host order. */
  for (size_t i = 0; i < n; i++) vas[i] = rd64(&vas[i]);

  if (R.arch == ARCH_X86) x86_xlat_regime();
  else {
    uint64_t tcr = require_reg(&loaded_json, "tcr_el1");
    arm_xlat_half(&AT[0], 0, tcr);
    arm_xlat_half(&AT[1], 1, tcr);
  }

  uint64_t checksum = 0, faults = 0, pa = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  /* The architecture is chosen once, outside the loop (as mmulab's Mmu is one class per image). */
  if (R.arch == ARCH_X86) {
    for (size_t i = 0; i < n; i++) {
      if (x86_translate(vas[i], &pa)) checksum += pa;
      else faults++;
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      if (arm_translate(vas[i], &pa)) checksum += pa;
      else faults++;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  free(vas);
  double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  char secs[32];
  snprintf(secs, sizeof secs, "%.6f", seconds);
  size_t k = strlen(secs);
  while (k > 1 && secs[k - 1] == '0') secs[--k] = 0;
  if (secs[k - 1] == '.') secs[--k] = 0;
  printf("{\"translations\":%zu,\"faults\":%" PRIu64 ",\"checksum\":\"0x%" PRIx64 "\",\"seconds\":%s,\"ns_per_translation\":%.2f}\n", n, faults,
         checksum, secs, seconds * 1e9 / (double)n);
}

/* ---- command line ---------------------------------------------------------------------------- */

static const char usage[] =
    "Usage: walker DIR [--start VA] [--end VA]\n"
    "       walker DIR --translate FILE\n"
    "\n"
    "Walk the page tables of the image folder DIR (memory.bin + machine.json) as `mmulab walk --json`\n"
    "does and print the same JSON line: entries, leaves, leaves_by_level, checksum, seconds.\n"
    "--end 0x10000000000000000 (2^64) is the default.\n"
    "\n"
    "--translate FILE: translate each VA of FILE (little-endian u64s) by the hardware walk, as a\n"
    "user-mode read with no TLB, and print translations, faults, checksum (sum of the PAs mod 2^64),\n"
    "seconds and ns_per_translation.\n";

/* A page-aligned hex VA; *is_top is set for exactly 2^64. */
static uint64_t parse_va(const char *text, const char *what, int *is_top) {
  char clean[80];
  size_t n = 0;
  for (const char *p = text; *p; p++)
    if (*p != '_' && n + 1 < sizeof clean) clean[n++] = *p;
  clean[n] = 0;
  if (strncmp(clean, "0x", 2) && strncmp(clean, "0X", 2)) die(2, "%s: '%s' is not a hex address (0x…)", what, text);
  const char *d = clean + 2;
  if (!*d) die(2, "%s: '%s' is not a hex address (0x…)", what, text);
  while (*d == '0' && d[1]) d++;
  size_t digits = strlen(d);
  for (const char *p = d; *p; p++)
    if (!strchr("0123456789abcdefABCDEF", *p)) die(2, "%s: '%s' is not a hex address (0x…)", what, text);
  *is_top = 0;
  if (digits > 16) {
    if (digits == 17 && d[0] == '1' && strspn(d + 1, "0") == 16) {
      *is_top = 1;
      return 0;
    }
    die(2, "%s: '%s' is beyond 2^64", what, text);
  }
  uint64_t v = strtoull(d, NULL, 16);
  if (v % R.page_size) die(2, "%s: %s is not aligned to the page size (%" PRIu64 ")", what, text, R.page_size);
  return v;
}

int main(int argc, char **argv) {
  const char *dir = NULL, *start_text = NULL, *end_text = NULL, *translate_file = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      fputs(usage, stdout);
      return 0;
    } else if (!strcmp(argv[i], "--start") && i + 1 < argc) start_text = argv[++i];
    else if (!strcmp(argv[i], "--end") && i + 1 < argc) end_text = argv[++i];
    else if (!strcmp(argv[i], "--translate") && i + 1 < argc) translate_file = argv[++i];
    else if (!strcmp(argv[i], "--json")) continue; /* JSON is the only output; accepted for symmetry */
    else if (argv[i][0] == '-' && argv[i][1]) die(2, "unknown option '%s'\n\n%s", argv[i], usage);
    else if (!dir) dir = argv[i];
    else die(2, "one DIR only\n\n%s", usage);
  }
  if (!dir) die(2, "DIR is required: an image folder with memory.bin and machine.json\n\n%s", usage);
  if (translate_file && (start_text || end_text)) die(2, "--translate walks each VA of FILE; it takes no --start/--end\n\n%s", usage);
  load_image(dir);
  if (translate_file) {
    run_translate(translate_file);
    return 0;
  }

  /* [start, last]: inclusive bounds, so a range may end at 2^64. */
  uint64_t start = 0, last = UINT64_MAX;
  int top = 0;
  if (start_text) {
    start = parse_va(start_text, "--start", &top);
    if (top) die(2, "--start %s must be below --end", start_text);
  }
  if (end_text) {
    uint64_t end = parse_va(end_text, "--end", &top);
    if (!top) {
      if (end <= start) die(2, "--start 0x%" PRIx64 " must be below --end 0x%" PRIx64, start, end);
      last = end - 1;
    }
  }

  struct walk_ops ops;
  memset(&ops, 0, sizeof ops);
  /* count.ts: the lowest alias of each physical level counts its entries — a logical level
   * whose child is not folded. pte_entry and pte_hole always exist. */
  ops.pte_entry = count_pte;
  ops.pte_hole = count_hole;
  ops.pmd_entry = count_pmd; /* pte is never folded */
  if (!R.folded[PMD]) ops.pud_entry = count_pud;
  if (!R.folded[PUD]) ops.p4d_entry = count_table;
  if (!R.folded[P4D]) ops.pgd_entry = count_table;

  struct counter c;
  memset(&c, 0, sizeof c);
  struct walk w = {&ops, &c};
#if defined(__GNUC__)
  /* Hide where w.ops points, so the compiler cannot turn the callbacks into direct calls: the
   * kernel's walk calls through a pointer it cannot see through either. */
  __asm__ volatile("" : "+r"(w.ops));
#endif
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < nroots; i++) {
    uint64_t s = start > roots[i].start ? start : roots[i].start;
    uint64_t l = last < roots[i].last ? last : roots[i].last;
    if (s > l) continue;
    int err = walk_pgd_range(roots[i].table, s, l + 1 /* 0 stands for 2^64 */, &w);
    if (err) die(1, "walk of %s returned %d", roots[i].name, err);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

  /* The same JSON line as `mmulab walk --json`. JavaScript orders integer keys ascending before
   * other keys, so "-1" (ARM64 level -1) would come last. */
  printf("{\"entries\":%" PRIu64 ",\"leaves\":%" PRIu64 ",\"leaves_by_level\":{", c.entries, c.leaves);
  int first = 1;
  for (int i = 1; i < 7; i++)
    if (c.by_level[i]) {
      printf("%s\"%d\":%" PRIu64, first ? "" : ",", i - 1, c.by_level[i]);
      first = 0;
    }
  if (c.by_level[0]) printf("%s\"-1\":%" PRIu64, first ? "" : ",", c.by_level[0]);
  char secs[32];
  snprintf(secs, sizeof secs, "%.6f", seconds);
  size_t k = strlen(secs);
  while (k > 1 && secs[k - 1] == '0') secs[--k] = 0;
  if (secs[k - 1] == '.') secs[--k] = 0;
  printf("},\"checksum\":\"0x%" PRIx64 "\",\"seconds\":%s}\n", c.checksum, secs);
  return 0;
}
