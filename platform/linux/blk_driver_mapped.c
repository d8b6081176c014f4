/* Reads of an image that lives in memory (tmpfs, ramfs) copied from a mapping of it: one
 * memcpy instead of a system call per read. The mapping is read-only and writes still go
 * through pwritev2 or io_uring: both reach the same pages, so a read sees every write
 * answered before it, and a DISCARD's punched hole reads as zeros.
 *
 * A mapped page costs a fault the first time it is touched, and a fault costs far more
 * than a system call (27 us for the 64 KiB the kernel maps around it, against 2.4 us for a
 * 4 KiB preadv2, on the VM these figures come from; asking for 256 KiB at once costs
 * 25 us). So the image is used through the mapping in chunks, and only where it is read
 * again: a chunk's first reads take the system call, and the read that finds it read
 * often enough populates the whole chunk in one call and uses the mapping from then on.
 * A sparse reader pays a few system calls per chunk, as before; a reader that comes back
 * pays one populate per 256 KiB.
 *
 * Another process may shrink the image under us. A copy from a page past the new end
 * raises SIGBUS; the copy catches it and fails, the driver stops using the mapping and
 * the read gets an error status from the system call path. A SIGBUS that is not from such
 * a copy goes to whatever handled SIGBUS before. */
#include "platform/linux/blk_driver_internal.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22   /* Linux 5.14's value, for older headers */
#endif

#define CHUNK_SHIFT 18u         /* 256 KiB */
#define WARM_AFTER_READS 4u     /* the read of a chunk that populates it; those before take
                                 * the system call */

/* The copy this thread is doing, for the handler to recognise its fault. */
static _Thread_local sigjmp_buf *copy_escape;
static _Thread_local const uint8_t *copy_from, *copy_end;

static struct sigaction earlier_sigbus;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static bool handler_installed;

static void on_sigbus(int sig, siginfo_t *info, void *context)
{
    const uint8_t *at = info->si_addr;
    if (copy_escape && at >= copy_from && at < copy_end)
        siglongjmp(*copy_escape, 1);
    if (earlier_sigbus.sa_flags & SA_SIGINFO) {
        earlier_sigbus.sa_sigaction(sig, info, context);
        return;
    }
    if (earlier_sigbus.sa_handler != SIG_DFL && earlier_sigbus.sa_handler != SIG_IGN) {
        earlier_sigbus.sa_handler(sig);
        return;
    }
    /* the faulting access runs again on return, now with the default action */
    signal(SIGBUS, SIG_DFL);
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    /* NODEFER: siglongjmp leaves the handler without restoring the signal mask, and a
     * SIGBUS still blocked then would kill the process at the next fault */
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    handler_installed = sigaction(SIGBUS, &sa, &earlier_sigbus) == 0;
}

static size_t map_bytes(const blk_driver *d) { return (size_t)d->capacity * BLK_TRANSFER_SIZE; }

bool blk_mapped_open(blk_driver *d)
{
    pthread_once(&handler_once, install_handler);
    if (!handler_installed || d->capacity == 0 || d->capacity > SIZE_MAX / BLK_TRANSFER_SIZE)
        return false;
    size_t bytes = map_bytes(d);
    size_t chunks = ((bytes - 1) >> CHUNK_SHIFT) + 1;
    uint8_t *reads = calloc(chunks, 1);
    void *map = reads ? mmap(NULL, bytes, PROT_READ, MAP_SHARED, d->fd, 0) : MAP_FAILED;
    if (map == MAP_FAILED) {
        free(reads);
        return false;
    }
    d->map = map;
    d->map_chunk_reads = reads;
    return true;
}

void blk_mapped_close(blk_driver *d)
{
    if (d->map)
        munmap((void *)d->map, map_bytes(d));
    free(d->map_chunk_reads);
    d->map = NULL;
    d->map_chunk_reads = NULL;
}

/* True when every chunk of [offset, offset + len) is populated or has just been; counts a
 * read of each chunk that is not. */
static bool chunks_warm(blk_driver *d, uint64_t offset, size_t len)
{
    bool warm = true;
    for (uint64_t c = offset >> CHUNK_SHIFT; c <= (offset + len - 1) >> CHUNK_SHIFT; c++) {
        uint8_t *reads = &d->map_chunk_reads[c];
        if (*reads == WARM_AFTER_READS)
            continue;
        if (++*reads < WARM_AFTER_READS) {
            warm = false;
            continue;
        }
        /* Without MADV_POPULATE_READ (before Linux 5.14) the copy's faults populate it. */
        uint64_t start = c << CHUNK_SHIFT;
        madvise((void *)(d->map + start), af_min_u64(map_bytes(d) - start, 1ull << CHUNK_SHIFT), MADV_POPULATE_READ);
    }
    return warm;
}

blk_mapped_result blk_mapped_read(blk_driver *d, void *to, uint64_t offset, size_t len)
{
    if (!chunks_warm(d, offset, len))
        return BLK_MAPPED_COLD;
    sigjmp_buf escape;
    if (sigsetjmp(escape, 0)) {
        copy_escape = NULL;
        return BLK_MAPPED_FAULT;
    }
    copy_from = d->map + offset;
    copy_end = copy_from + len;
    copy_escape = &escape;
    atomic_signal_fence(memory_order_seq_cst);
    memcpy(to, copy_from, len);
    atomic_signal_fence(memory_order_seq_cst);
    copy_escape = NULL;
    return BLK_MAPPED_DONE;
}
