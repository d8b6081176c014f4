/* The component's deadline (fs_component_deadline: when dirty data is due for write-back)
 * armed on an sDDF timer driver, so an idle PD still writes back: without a timer the
 * server can only notice a passed deadline when a client or the driver next wakes it.
 *
 * The system connects the PD to a timer driver (sDDF's: arm generic timer, goldfish RTC)
 * with a channel the PD may ppcall, named in .timer_client_config. The driver keeps one
 * pending timeout per client, relative in nanoseconds, and notifies the channel when it
 * passes; a new one replaces the old. A system without a timer (LionsOS gives its FAT PD
 * none) leaves the section zero, and write-back then waits for the next request.
 */
#include <microkit.h>

#include "platform/component.h"
#include "platform/microkit/microkit_pd.h"
#include "server/fs_component.h"

__attribute__((section(".timer_client_config"))) mk_timer_client_config timer_config;

/* A deadline that has already passed is armed this far ahead, so a server that cannot
 * start its write-back yet (every fiber busy) is woken at a bounded rate, not in a loop. */
#define MK_TIMER_MIN_NS 1000000ull

static bool have_timer;
static uint64_t armed = UINT64_MAX; /* the deadline the driver holds; UINT64_MAX: none */

void mk_timer_init(void)
{
    if (af_memcmp(timer_config.magic, MK_TIMER_MAGIC, MK_TIMER_MAGIC_LEN) != 0) {
        mk_log("no timer (.timer_client_config): write-back runs when a request arrives after its deadline");
        return;
    }
    uint8_t id = timer_config.driver_id;
    if (id > MICROKIT_MAX_CHANNEL_ID || !((microkit_pps >> id) & 1u) || !((microkit_notifications >> id) & 1u)) {
        mk_log("ERROR: .timer_client_config: its channel is not one this PD may call and be notified on; "
               "write-back runs when a request arrives after its deadline");
        return;
    }
    have_timer = true;
}

bool mk_timer_fired(unsigned channel)
{
    if (!have_timer || channel != timer_config.driver_id)
        return false;
    armed = UINT64_MAX;
    return true;
}

void mk_timer_arm(uint64_t deadline)
{
    if (!have_timer || deadline == UINT64_MAX || deadline == armed)
        return;
    uint64_t now = component_time_ns();
    uint64_t relative = deadline > now + MK_TIMER_MIN_NS ? deadline - now : MK_TIMER_MIN_NS;
    microkit_mr_set(0, relative);
    microkit_ppcall(timer_config.driver_id, microkit_msginfo_new(MK_TIMER_SET_TIMEOUT, 1));
    armed = deadline;
}
