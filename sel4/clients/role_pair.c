/* Role pair: the server's clients at work at the same time, each in its own directory and
 * all in one shared directory. Each writes its files (several fibers at once), leaves a
 * marker, waits for every peer's marker, then reads the peers' files in the shared
 * directory. An exclusive create of one name by every client has exactly one winner.
 * (The clients run at one priority, so a client waiting for its peers lets them run.)
 */
#include "sel4/clients/files.h"

#define PAIR_FILES 12u
#define WAIT_TRIES 2000000u

static uint64_t pair_seed(uint32_t client, uint32_t k) { return 7000u + client * 100u + k; }
static uint64_t pair_size(uint32_t client, uint32_t k) { return 1000u + (client * 37u + k) * 4099u; }

static char own_dir[64];

static void own_file(uint32_t k, void *unused)
{
    char path[128], name[32], check[48];
    sddf_snprintf(name, sizeof(name), "/own_%u.bin", (unsigned)k);
    tc_join(path, sizeof(path), own_dir, name, NULL);
    sddf_snprintf(check, sizeof(check), "pair_own_file_%u", (unsigned)k);
    tc_file_round_trip(check, path, pair_size(test_config.index, k) * 3, pair_seed(test_config.index, k) + 50, k & 1);
}

static void shared_file(uint32_t k, void *unused)
{
    char path[128], name[32], check[48];
    sddf_snprintf(name, sizeof(name), "/p%u_%u.bin", (unsigned)test_config.index, (unsigned)k);
    tc_join(path, sizeof(path), test_config.shared_dir, name, NULL);
    sddf_snprintf(check, sizeof(check), "pair_shared_file_%u", (unsigned)k);
    tc_file_round_trip(check, path, pair_size(test_config.index, k), pair_seed(test_config.index, k), k & 1);
}

static bool wait_for_peers(void)
{
    for (uint32_t peer = 0; peer < test_config.peers; peer++) {
        char path[96], name[16];
        sddf_snprintf(name, sizeof(name), "/done_%u", (unsigned)peer);
        tc_join(path, sizeof(path), test_config.shared_dir, name, NULL);
        uint32_t tries = 0;
        while (tc_stat(path, NULL) != FS_STATUS_SUCCESS)
            if (++tries == WAIT_TRIES)
                return false;
    }
    return true;
}

void tc_role_pair(void)
{
    const char *shared = test_config.shared_dir;
    tc_join(own_dir, sizeof(own_dir), test_config.dir, "_own", NULL);
    uint64_t own = tc_mkdir(own_dir);
    uint64_t sh = tc_mkdir(shared);
    tc_expect(own == FS_STATUS_SUCCESS && (sh == FS_STATUS_SUCCESS || sh == FS_STATUS_ALREADY_EXISTS),
              "pair_directories", "own %s, shared %s", tc_status_name(own), tc_status_name(sh));

    /* the contended name: exclusive create, the winner writes its number */
    char contended[96];
    tc_join(contended, sizeof(contended), shared, "/contended", NULL);
    uint64_t fd, done;
    uint64_t mine = tc_open(contended, FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_EXCLUSIVE, &fd);
    if (mine == FS_STATUS_SUCCESS) {
        uint8_t who = (uint8_t)test_config.index;
        tc_write(fd, 0, &who, 1, &done);
        tc_close(fd);
    }

    tc_parallel(PAIR_FILES, 6, own_file, NULL);
    tc_parallel(PAIR_FILES, 6, shared_file, NULL);

    char marker[96], name[16], why[160];
    sddf_snprintf(name, sizeof(name), "/done_%u", (unsigned)test_config.index);
    tc_join(marker, sizeof(marker), shared, name, NULL);
    bool marked = tc_write_file(marker, 0, 0, 0, true, why, sizeof(why));
    bool all_done = marked && wait_for_peers();
    if (!tc_expect(all_done, "pair_peers_finished", "marker %d, waited %u stats per peer", marked, WAIT_TRIES))
        return;

    uint32_t peers_ok = 0, peers_checked = 0;
    for (uint32_t peer = 0; peer < test_config.peers; peer++) {
        if (peer == test_config.index)
            continue;
        for (uint32_t k = 0; k < PAIR_FILES; k++) {
            char path[128];
            sddf_snprintf(name, sizeof(name), "/p%u_%u.bin", (unsigned)peer, (unsigned)k);
            tc_join(path, sizeof(path), shared, name, NULL);
            peers_checked++;
            peers_ok += tc_check_file(path, pair_size(peer, k), pair_seed(peer, k), why, sizeof(why));
        }
    }
    tc_expect(peers_checked > 0 && peers_ok == peers_checked, "pair_reads_peers_files", "%u of %u intact (%s)",
              (unsigned)peers_ok, (unsigned)peers_checked, peers_ok == peers_checked ? "" : why);

    uint64_t entries = 0, dfd;
    char entry[256];
    if (tc_opendir(shared, &dfd) == FS_STATUS_SUCCESS) {
        while (tc_readdir(dfd, entry, sizeof(entry)) == FS_STATUS_SUCCESS)
            entries += entry[0] == 'p';
        tc_closedir(dfd);
    }
    tc_expect(entries == (uint64_t)PAIR_FILES * test_config.peers, "pair_shared_directory_lists_everyone",
              "%lu shared files listed", (unsigned long)entries);

    uint8_t winner = 0xff;
    uint64_t st = tc_open(contended, FS_OPEN_FLAGS_READ_ONLY, &fd);
    if (st == FS_STATUS_SUCCESS) {
        tc_read(fd, 0, &winner, 1, &done);
        tc_close(fd);
    }
    bool i_won = mine == FS_STATUS_SUCCESS;
    tc_expect(st == FS_STATUS_SUCCESS && winner < test_config.peers && i_won == (winner == test_config.index) &&
                  (i_won || mine == FS_STATUS_ALREADY_EXISTS),
              "pair_exclusive_create_one_winner", "my create %s, the file names client %u", tc_status_name(mine),
              (unsigned)winner);
}
