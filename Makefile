# transporturl — the two commands of the README are `make demo` and `make test`.
# Both install what they need on a fresh Debian machine by themselves.

SHELL := /bin/bash
CARGO ?= cargo
CC ?= cc
CFLAGS_STRICT := -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -O2 -g
LIBDIR := target/release
STATIC_LIB := $(LIBDIR)/libtransporturl.a
SHARED_LIB := $(LIBDIR)/libtransporturl.so
NATIVE_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
BUILD := build

.PHONY: all deps lib header header-check examples demo test test-rust test-c test-python test-go test-fuzz hardening bench bench-smoke clean

all: lib examples

# Debian packages and the Python venv the tests and demo use.
deps:
	@scripts/ensure-apt.sh openssl python3-venv pkg-config g++ libasan8 libubsan1 valgrind
	@scripts/ensure-venv.sh >/dev/null

lib:
	$(CARGO) build --release

# Rewrites include/transporturl.h from the Rust source (cbindgen).
header:
	TU_WRITE_HEADER=1 $(CARGO) test --test header

header-check:
	$(CARGO) test --test header

$(BUILD):
	mkdir -p $(BUILD)

examples: lib | $(BUILD)
	$(CC) $(CFLAGS_STRICT) -Iinclude examples/tucat.c -o $(BUILD)/tucat $(STATIC_LIB) $(NATIVE_LIBS)
	@if [ -f examples/poll_echo.c ]; then \
	  echo "$(CC) ... examples/poll_echo.c -o $(BUILD)/poll_echo"; \
	  $(CC) $(CFLAGS_STRICT) -Iinclude examples/poll_echo.c -o $(BUILD)/poll_echo $(STATIC_LIB) $(NATIVE_LIBS); fi

demo: deps lib examples
	scripts/demo.sh

test: deps lib test-rust test-c test-python test-go test-fuzz bench-smoke
	@echo "make test: all suites passed"

test-rust:
	$(CARGO) test --features test-hooks

test-c: lib
	tests/c/run.sh

test-python: lib
	@if [ -d bindings/python ]; then scripts/test-python.sh; else echo "no Python binding yet"; fi

test-go: lib
	@if [ -f bindings/go/go.mod ]; then scripts/test-go.sh; else echo "no Go binding yet"; fi

# Short fuzzing: 3 targets x 20 s (installs the nightly toolchain and cargo-fuzz if missing).
test-fuzz:
	fuzz/run.sh 20

# The long forms of the hardening suite (HARDENING.md): load, peers and signals in a release
# build at full size, the boundary sweep strict, the C tests under ASan+UBSan and under
# valgrind, and 5 minutes of fuzzing per target. Figures go to target/hardening/figures.txt.
hardening: deps lib
	@mkdir -p target/hardening && rm -f target/hardening/figures.txt
	TU_HARDENING=full TU_HARDENING_REPORT=$(CURDIR)/target/hardening/figures.txt $(CARGO) test --release \
	  --test hardening_load --test hardening_peers --test hardening_signals --test hardening_props
	TU_HARDENING=full TU_HARDENING_REPORT=$(CURDIR)/target/hardening/figures.txt $(CARGO) test \
	  --features test-hooks --test hardening_boundary
	TU_CTEST_BUILD=$(CURDIR)/target/hardening/ctests-asan tests/c/run.sh 2>&1 | tee target/hardening/c-asan.log; test $${PIPESTATUS[0]} -eq 0
	@echo "c: under ASan+UBSan = $$(grep -E '^[0-9]+ passed' target/hardening/c-asan.log | tail -n 1)" >>target/hardening/figures.txt
	TU_SANITIZE=valgrind TU_CTEST_BUILD=$(CURDIR)/target/hardening/ctests-valgrind tests/c/run.sh 2>&1 | tee target/hardening/c-valgrind.log; test $${PIPESTATUS[0]} -eq 0
	@echo "c: under valgrind (definite+indirect leaks and errors fail) = $$(grep -E '^[0-9]+ passed' target/hardening/c-valgrind.log | tail -n 1)" >>target/hardening/figures.txt
	TU_HARDENING_REPORT=$(CURDIR)/target/hardening/figures.txt fuzz/run.sh $${TU_FUZZ_SECONDS:-300}
	@echo "make hardening: all passed; figures in target/hardening/figures.txt"

# Full comparison run (installs libssl-dev, php-cli, valgrind, matplotlib); see benches/README.md.
bench: lib
	benches/run.sh

# Small sizes, one repetition (< 2 min): proves every available peer still runs; asserts no ratios.
bench-smoke: lib
	benches/run.sh --smoke

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
