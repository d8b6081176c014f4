/* The in-thread baseline: asyncfat's FAT engine called in the benchmark's own thread, one
 * read at a time, over the same io_uring driver (in this process, polled: no other process
 * and no wake-up) with a cache of the same size as the server's. It is what a synchronous
 * FAT library called in-thread does per request (ChaN's FatFs linked into its caller, say),
 * paying only the engine and the driver: the figure the server's rates with requests in
 * flight are compared with (report_<model>_randread_inthread). */
#ifndef ASYNCFAT_BENCH_REPORT_REPORT_INTHREAD_H
#define ASYNCFAT_BENCH_REPORT_REPORT_INTHREAD_H

#include "platform/linux/blk_driver.h"

typedef struct inthread_job {
    const char *image;          /* a FAT volume holding the files */
    blk_device_model model;
    uint64_t cache_bytes;
    uint32_t file_count;        /* files path(0) .. path(file_count - 1) */
    void (*path)(char *buf, size_t size, uint32_t i);
    uint64_t file_bytes;
    uint32_t io_bytes;
    double seconds;
} inthread_job;

/* 4 KiB (io_bytes) reads at random over the files for `seconds`: reads per second. Exits
 * on failure. */
double inthread_randread(const inthread_job *job);

#endif
