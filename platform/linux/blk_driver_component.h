/* The block driver as a component (platform/component.h): it serves one client through
 * the regions and channel named below. Configure it before the system starts (a function
 * component inherits the configuration across fork). Queue capacity: the configured one,
 * or as many entries as both queue regions hold. Once the storage info is ready the driver
 * notifies the client, so a client need not spin on the ready flag. */
#ifndef ASYNCFAT_PLATFORM_LINUX_BLK_DRIVER_COMPONENT_H
#define ASYNCFAT_PLATFORM_LINUX_BLK_DRIVER_COMPONENT_H

#include "platform/linux/blk_driver.h"

#define BLK_REGION_STORAGE_INFO "blk_storage_info"
#define BLK_REGION_REQUESTS "blk_requests"
#define BLK_REGION_RESPONSES "blk_responses"
#define BLK_REGION_DATA "blk_data"
#define BLK_CHANNEL_CLIENT "blk_client"

void blk_driver_component_configure(const blk_driver_config *config, uint32_t queue_capacity);
void blk_driver_component_init(void);
void blk_driver_component_notified(unsigned channel);
/* Close the driver (for a loop on a thread that ends: lx_component_entry.fini). */
void blk_driver_component_fini(void);

#endif
