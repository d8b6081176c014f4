/* Compiles only if asyncfat's own definitions of the sDDF configuration structs
 * (platform/microkit/config.h, written from sDDF's documented layouts) have the size and
 * every field offset of sDDF's headers; built with each board's PD compiler. LionsOS's
 * file-system structs have no header here: config.h pins them to their documented layout. */
#include <stddef.h>
#include <sddf/blk/config.h>
#include <sddf/resources/common.h>
#include <sddf/timer/config.h>
#include <sddf/timer/protocol.h>

#include "platform/microkit/config.h"

#define SAME_FIELD(ours, theirs, field)                                                        \
    _Static_assert(offsetof(ours, field) == offsetof(theirs, field) &&                         \
                       sizeof(((ours *)0)->field) == sizeof(((theirs *)0)->field),             \
                   #ours "." #field " is where sDDF's " #theirs " has it")
#define SAME_SIZE(ours, theirs) _Static_assert(sizeof(ours) == sizeof(theirs), #ours " is sDDF's " #theirs)

SAME_SIZE(mk_region_resource, region_resource_t);
SAME_FIELD(mk_region_resource, region_resource_t, vaddr);
SAME_FIELD(mk_region_resource, region_resource_t, size);

SAME_SIZE(mk_blk_connection, blk_connection_resource_t);
SAME_FIELD(mk_blk_connection, blk_connection_resource_t, storage_info);
SAME_FIELD(mk_blk_connection, blk_connection_resource_t, req_queue);
SAME_FIELD(mk_blk_connection, blk_connection_resource_t, resp_queue);
SAME_FIELD(mk_blk_connection, blk_connection_resource_t, num_buffers);
SAME_FIELD(mk_blk_connection, blk_connection_resource_t, id);

SAME_SIZE(mk_blk_client_config, blk_client_config_t);
SAME_FIELD(mk_blk_client_config, blk_client_config_t, magic);
SAME_FIELD(mk_blk_client_config, blk_client_config_t, virt);
SAME_FIELD(mk_blk_client_config, blk_client_config_t, data);

_Static_assert(MK_BLK_MAGIC_LEN == SDDF_BLK_MAGIC_LEN, "blk magic length");

SAME_SIZE(mk_timer_client_config, timer_client_config_t);
SAME_FIELD(mk_timer_client_config, timer_client_config_t, magic);
SAME_FIELD(mk_timer_client_config, timer_client_config_t, driver_id);
_Static_assert(MK_TIMER_MAGIC_LEN == SDDF_TIMER_MAGIC_LEN, "timer magic length");
_Static_assert(MK_TIMER_GET_TIME == SDDF_TIMER_GET_TIME && MK_TIMER_SET_TIMEOUT == SDDF_TIMER_SET_TIMEOUT,
               "timer protocol labels");
