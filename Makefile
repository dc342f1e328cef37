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

.PHONY: all deps lib header header-check examples demo test test-rust test-c test-python test-go bench bench-smoke clean

all: lib examples

# Debian packages and the Python venv the tests and demo use.
deps:
	@scripts/ensure-apt.sh openssl python3-venv pkg-config libasan8 libubsan1 valgrind
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

test: deps lib test-rust test-c test-python test-go
	@echo "make test: all suites passed"

test-rust:
	$(CARGO) test --features test-hooks

test-c: lib
	tests/c/run.sh

test-python: lib
	@if [ -d bindings/python ]; then scripts/test-python.sh; else echo "no Python binding yet"; fi

test-go: lib
	@if [ -f bindings/go/go.mod ]; then scripts/test-go.sh; else echo "no Go binding yet"; fi

bench:
	@if [ -f benches/run.sh ]; then benches/run.sh; else echo "benchmarks: not built yet"; exit 1; fi

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
