/* Role idle_writer: data written and never synced reaches the disk while the system idles.
 *
 * It makes a directory and writes files into it with no sync, closes them, lists them for
 * the Linux side ("FILE" lines) and stops sending anything, leaving the volume mounted
 * (no DEINITIALISE). Nothing but the file-system PD's background write-back, woken by its
 * timer, can then put them on the disk: sel4/test_sel4.sh cuts the power some seconds
 * after this client's summary and reads the files back from the image.
 */
#include "sel4/clients/files.h"

void tc_role_idle_writer(void)
{
    static const struct {
        const char *path;
        uint64_t size, seed;
    } files[] = {
        {"/idle/written then idle fill_7001_1.bin", 1, 7001},
        {"/idle/written then idle fill_7002_70000.bin", 70000, 7002},
        {"/idle/written then idle fill_7003_300007.bin", 300007, 7003},
    };
    char why[160] = "";
    uint64_t st = tc_mkdir("/idle");
    bool ok = tc_expect(st == FS_STATUS_SUCCESS, "idle_mkdir", "%s", tc_status_name(st));
    for (size_t i = 0; ok && i < AF_ARRAY_LEN(files); i++) {
        ok = tc_write_file(files[i].path, files[i].size, files[i].seed, 0, false, why, sizeof(why));
        if (ok)
            tc_report_file(files[i].path, files[i].size, files[i].seed);
    }
    tc_expect(ok, "idle_files_written_unsynced", "%s", why);
    tc_printf("idle: written, no sync; idling with the volume mounted");
}
