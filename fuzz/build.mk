# The libFuzzer targets' build, run as a sub-make by fuzz/module.mk (which passes BUILD,
# FUZZ_LIB_SRCS: the library's sources, and FUZZ_COMMON_CFLAGS), because the module
# fragments are read before the library's source list is complete.
#   $(BUILD)/fuzz/      clang, -fsanitize=fuzzer + ASan + UBSan (make fuzz, make test)
#   $(BUILD)/fuzzcov/   clang, -fsanitize=fuzzer + source-based coverage, no ASan
#                       (make fuzz-coverage replays the corpora through these)

FUZZ_CC ?= clang
FUZZ_TARGETS ?= bpb dir check server
FUZZ_SUPPORT_SRCS := fuzz/fz_image.c fuzz/fz_proc.c fuzz/fz_seed.c fuzz/fz_recipe.c fuzz/fz_template.c \
	fuzz/fz_rig.c fuzz/fz_target.c
FLAVOUR ?= fuzz
OUT := $(BUILD)/$(FLAVOUR)

ifeq ($(FLAVOUR),fuzzcov)
FLAVOUR_CFLAGS := -O1 -fsanitize=fuzzer-no-link -fprofile-instr-generate -fcoverage-mapping
FLAVOUR_LDFLAGS := -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping
else
FLAVOUR_CFLAGS := -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -DAF_ASAN=1 -DAF_DEBUG=1
FLAVOUR_LDFLAGS := -fsanitize=fuzzer,address,undefined
endif
CFLAGS := $(FUZZ_COMMON_CFLAGS) $(FLAVOUR_CFLAGS)

ifeq ($(V),1)
Q :=
quiet = @true
else
Q := @
quiet = @printf '  %-6s %s\n' $(1) $(2)
endif

objs_of = $(patsubst %.c,$(OUT)/obj/%.o,$(patsubst %.S,$(OUT)/obj/%.o,$(1)))
LIB := $(OUT)/libasyncfat.a
SUPPORT_OBJS := $(call objs_of,$(FUZZ_SUPPORT_SRCS))
BINS := $(addprefix $(OUT)/fuzz_,$(FUZZ_TARGETS))

all: $(BINS)

$(OUT)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(call quiet,CC,$@)
	$(Q)$(FUZZ_CC) $(CFLAGS) -MMD -MP -c $< -o $@
$(OUT)/obj/%.o: %.S
	@mkdir -p $(@D)
	$(call quiet,AS,$@)
	$(Q)$(FUZZ_CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(call objs_of,$(FUZZ_LIB_SRCS))
	@rm -f $@
	$(call quiet,AR,$@)
	$(Q)ar rcs $@ $^

$(OUT)/fuzz_%: $(OUT)/obj/fuzz/fuzz_%.o $(SUPPORT_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(call quiet,LD,$@)
	$(Q)$(FUZZ_CC) $(FLAVOUR_LDFLAGS) -o $@ $^ -luring -lpthread -lm

.SECONDARY:
-include $(shell find $(OUT) -name '*.d' 2>/dev/null)
