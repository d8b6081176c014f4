/* Time for the PD, with no driver and no system call.
 *
 * Monotonic: on aarch64 the generic timer's physical count CNTPCT_EL0 at CNTFRQ_EL0 (seL4
 * lets user mode read them on these boards: CONFIG_EXPORT_PCNT_USER); on riscv64 the `time`
 * CSR (rdtime), counting at the board's timebase (MK_RISCV_TIMEBASE_HZ, 10 MHz on QEMU's
 * virt machine, from its device tree).
 *
 * Wall clock, for file times: Unix seconds at boot from .asyncfat_config's wall_clock when
 * the system writes it (sel4/gen_system.py writes the time the system was generated), else
 * the time this asyncfat was built (ASYNCFAT_BUILD_EPOCH, from the build's clock or
 * SOURCE_DATE_EPOCH), plus the monotonic seconds since init. Never 1980 by default: a file
 * written on a system that sets no clock carries a time no older than the build.
 */
#include "platform/component.h"
#include "platform/microkit/microkit_pd.h"

#ifndef ASYNCFAT_BUILD_EPOCH
#error "ASYNCFAT_BUILD_EPOCH (Unix seconds) must be defined by the build (asyncfat.mk does)"
#endif
#ifndef MK_RISCV_TIMEBASE_HZ
#define MK_RISCV_TIMEBASE_HZ 10000000u
#endif

static uint64_t counter_hz = 1; /* until mk_clock_init */
static uint64_t counter_at_init;
static int64_t wall_at_init;

static uint64_t counter_read(void)
{
#if defined(__aarch64__)
    uint64_t v;
    __asm__ volatile("isb; mrs %0, cntpct_el0" : "=r"(v));
    return v;
#elif defined(__riscv)
    uint64_t v;
    __asm__ volatile("rdtime %0" : "=r"(v));
    return v;
#else
#error "no counter for this architecture"
#endif
}

static uint64_t counter_frequency(void)
{
#if defined(__aarch64__)
    uint64_t hz;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(hz));
    return hz ? hz : 1;
#else
    return MK_RISCV_TIMEBASE_HZ;
#endif
}

void mk_clock_init(void)
{
    counter_hz = counter_frequency();
    counter_at_init = counter_read();
    wall_at_init = mk_asyncfat_config_valid() && asyncfat_config.wall_clock > 0 ? asyncfat_config.wall_clock
                                                                                : (int64_t)ASYNCFAT_BUILD_EPOCH;
}

uint64_t component_time_ns(void)
{
    uint64_t ticks = counter_read() - counter_at_init;
    uint64_t seconds = ticks / counter_hz;
    uint64_t rest = ticks % counter_hz;
    return seconds * 1000000000ull + rest * 1000000000ull / counter_hz;
}

int64_t component_wall_time(void)
{
    return wall_at_init + (int64_t)((counter_read() - counter_at_init) / counter_hz);
}
