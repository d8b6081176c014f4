# Fuzzing (issue 19). The test that `make` builds the sanitizer build of the command.
TEST_SCRIPTS += fuzz/tests/test_san_build.sh
