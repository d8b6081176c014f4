/* Power cuts at every write (a sample; POWERCUT=full: all of them) on FAT12. */
#include "tests/powercut/powercut.h"

static const pc_image_spec spec = { .fat = 12, .kib = 1024, .sectors_per_cluster = 1 };

TEST(powercut_fat12_tree_copy) { pc_test_workload("tree_copy", &spec); }
TEST(powercut_fat12_small_files) { pc_test_workload("small_files", &spec); }
TEST(powercut_fat12_copy_times) { pc_test_workload("copy_times", &spec); }
TEST(powercut_fat12_append_fsync) { pc_test_workload("append_fsync", &spec); }
TEST(powercut_fat12_overwrite) { pc_test_workload("overwrite", &spec); }
TEST(powercut_fat12_truncate) { pc_test_workload("truncate", &spec); }
TEST(powercut_fat12_rename) { pc_test_workload("rename", &spec); }
TEST(powercut_fat12_churn) { pc_test_workload("churn", &spec); }
TEST(powercut_fat12_concurrent) { pc_test_workload("concurrent", &spec); }
TEST(powercut_fat12_background_sync) { pc_test_workload("background_sync", &spec); }
TEST(powercut_fat12_truncate_discard) { pc_test_workload("truncate_discard", &spec); }
TEST(powercut_fat12_free_reuse) { pc_test_workload("free_reuse", &spec); }
TEST(powercut_fat12_free_reuse_discard) { pc_test_workload("free_reuse_discard", &spec); }
TEST(powercut_fat12_concurrent_discard) { pc_test_workload("concurrent_discard", &spec); }
