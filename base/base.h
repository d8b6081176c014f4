/* base: the few freestanding helpers every layer of the portable core may use.
 *
 * Contract: only the compiler's own headers (stdint, stddef, stdbool, stdalign); no libc,
 * no OS. Memory helpers map to compiler builtins; in a freestanding link the definitions
 * the compiler may call (memcpy, memset, memmove, memcmp) come from base/freestanding.c.
 * Little-endian load/store helpers read on-disk and on-wire fields at any alignment.
 */
#ifndef ASYNCFAT_BASE_H
#define ASYNCFAT_BASE_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define AF_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define AF_UNUSED(x) ((void)(x))
#define AF_LIKELY(x) __builtin_expect(!!(x), 1)
#define AF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define AF_NORETURN _Noreturn

/* Our own invariants only (never input checks): a broken one stops the program at once. */
#define AF_ASSERT(cond)              \
    do {                             \
        if (AF_UNLIKELY(!(cond)))    \
            __builtin_trap();        \
    } while (0)

#define af_memcpy(d, s, n) __builtin_memcpy((d), (s), (n))
#define af_memmove(d, s, n) __builtin_memmove((d), (s), (n))
#define af_memset(d, c, n) __builtin_memset((d), (c), (n))
#define af_memcmp(a, b, n) __builtin_memcmp((a), (b), (n))

static inline uint64_t af_min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static inline uint64_t af_max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static inline uint32_t af_min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }
static inline uint32_t af_max_u32(uint32_t a, uint32_t b) { return a > b ? a : b; }

/* Round x up to a multiple of the power of two `align`. */
static inline uintptr_t af_align_up(uintptr_t x, uintptr_t align) { return (x + align - 1) & ~(align - 1); }
static inline uintptr_t af_align_down(uintptr_t x, uintptr_t align) { return x & ~(align - 1); }
static inline bool af_is_pow2(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* Index of the lowest set bit of a non-zero x. Targets without a count-trailing-zeros
 * instruction (riscv64 without Zbb) would make the compiler call libgcc, which soft-float
 * riscv64 has no build of here, so they get a multiply-and-lookup instead. */
static inline uint32_t af_ctz64(uint64_t x)
{
#if defined(__riscv) && !defined(__riscv_zbb)
    static const uint8_t debruijn[64] = {
        0,  1,  2,  53, 3,  7,  54, 27, 4,  38, 41, 8,  34, 55, 48, 28, 62, 5,  39, 46, 44, 42,
        22, 9,  24, 35, 59, 56, 49, 18, 29, 11, 63, 52, 6,  26, 37, 40, 33, 47, 61, 45, 43, 21,
        23, 58, 17, 10, 51, 25, 36, 32, 60, 20, 57, 16, 50, 31, 19, 15, 30, 14, 13, 12,
    };
    return debruijn[((x & (0 - x)) * 0x022FDD63CC95386Dull) >> 58];
#else
    return (uint32_t)__builtin_ctzll(x);
#endif
}

static inline size_t af_strnlen(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n] != '\0')
        n++;
    return n;
}

static inline uint16_t af_load_le16(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] | (b[1] << 8));
}

static inline uint32_t af_load_le32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

static inline uint64_t af_load_le64(const void *p)
{
    const uint8_t *b = p;
    return (uint64_t)af_load_le32(b) | ((uint64_t)af_load_le32(b + 4) << 32);
}

static inline void af_store_le16(void *p, uint16_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}

static inline void af_store_le32(void *p, uint32_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

static inline void af_store_le64(void *p, uint64_t v)
{
    af_store_le32(p, (uint32_t)v);
    af_store_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

/* Atomics for shared-memory protocols: named by the ordering they give. */
#define af_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define af_load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define af_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define af_store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define af_fence_release() __atomic_thread_fence(__ATOMIC_RELEASE)
#define af_fence_acquire() __atomic_thread_fence(__ATOMIC_ACQUIRE)

#endif
