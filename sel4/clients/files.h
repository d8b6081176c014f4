/* Files with known contents (tc_fill) for the test roles. */
#ifndef ASYNCFAT_SEL4_CLIENTS_FILES_H
#define ASYNCFAT_SEL4_CLIENTS_FILES_H

#include <sddf/util/printf.h>

#include "sel4/clients/client.h"

/* Create (or open) path and write size bytes of tc_fill(seed); fsync first if sync. On
 * failure, a reason in why. */
bool tc_write_file(const char *path, uint64_t size, uint64_t seed, uint64_t flags, bool sync, char *why,
                   size_t why_size);
/* The file is exactly size bytes of tc_fill(seed), and a read at its end gives nothing. */
bool tc_check_file(const char *path, uint64_t size, uint64_t seed, char *why, size_t why_size);
/* Print the "FILE <size> <seed> <path>" line the Linux check reads. */
void tc_report_file(const char *path, uint64_t size, uint64_t seed);
/* Write, read back, report; one PASS/FAIL line named check. */
bool tc_file_round_trip(const char *check, const char *path, uint64_t size, uint64_t seed, bool sync);

#endif
