# The power-cut proof (issue 13): nine workloads cut at every write on FAT12, FAT16 and
# FAT32 (tests/powercut/powercut.h). make test checks a seeded sample (every second prefix
# cut, a lost-write variant in every second flush epoch, fsck.fat on one check in eight);
# make powercut checks every cut, four lost-write variants per epoch and fsck.fat on every
# image (about 3,700 cut images; several minutes).
POWERCUT_SRCS := tests/powercut/pc_model.c tests/powercut/pc_replay.c tests/powercut/pc_workloads.c \
	fat/tests/fat_engine_test.c fat/tests/fat_test_tools.c tests/support/blk_fixture.c
POWERCUT_TESTS := powercut_fat12 powercut_fat16 powercut_fat32
TESTS += $(POWERCUT_TESTS)
$(foreach t,$(POWERCUT_TESTS),$(eval $(t)_SRCS := tests/powercut/test_$(t).c $$(POWERCUT_SRCS)))
$(foreach t,$(POWERCUT_TESTS),$(eval $(t)_LDLIBS := $$(URING_LDLIBS)))

.PHONY: powercut
powercut: $(addprefix $(BUILD)/san/tests/,$(POWERCUT_TESTS))
	@POWERCUT=full TEST_TIMEOUT=$${TEST_TIMEOUT:-7200} BUILD=$(BUILD) tests/run.sh $^
