# qforge — plain Makefile. `make help` lists the targets.
PREFIX  ?= /usr/local
CC      ?= cc
# `make MPI=1`: the MPI build (Open MPI's mpicc, -DQFORGE_MPI; pipeline/pl_mpi.h) into
# build-mpi/ and bin-mpi/, beside the plain one. `make deps MPI=1` installs Open MPI.
ifeq ($(MPI),1)
BUILD   ?= build-mpi
BIN     ?= bin-mpi
CC      := mpicc
MPI_CFLAGS := -DQFORGE_MPI
endif
BUILD   ?= build
BIN     ?= bin

PKGS      := jansson zlib gsl openblas criterion libpcre2-8 libcrypto
APT_PKGS  := build-essential pkg-config libjansson-dev zlib1g-dev libgsl-dev libopenblas-dev libcriterion-dev time \
             libpcre2-dev libssl-dev
ifeq ($(MPI),1)
PKGS      += ompi-c
APT_PKGS  += libopenmpi-dev openmpi-bin
endif

OPT     ?= -O2
SAN     ?= $(shell cat $(BUILD)/.san 2>/dev/null)
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -fopenmp -I. -MMD -MP $(SAN) $(MPI_CFLAGS)
LDFLAGS += -fopenmp $(SAN)

PKG_CFLAGS = $(shell pkg-config --cflags jansson zlib gsl openblas libpcre2-8 libcrypto 2>/dev/null)
# GSL is linked against OpenBLAS as its CBLAS, not against libgslcblas.
PKG_LIBS   = $(filter-out -lgslcblas,$(shell pkg-config --libs gsl 2>/dev/null)) \
             $(shell pkg-config --libs openblas jansson zlib libpcre2-8 libcrypto 2>/dev/null) -lm
CRIT_LIBS  = $(shell pkg-config --libs criterion 2>/dev/null)
CFLAGS    += $(PKG_CFLAGS)

# Library folders, each built into one static archive, in link order (users before what they use).
LIBDIRS := $(foreach d,pipeline runtime input tokenizer arch libquant libgguf,$(if $(wildcard $(d)/*.c),$(d)))
LIB_SRCS = $(wildcard $(1)/*.c)
CLI_SRC  := tools/cli.c

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
ALIBS := $(foreach d,$(LIBDIRS),$(BUILD)/lib/$(d).a)

TOOLS := $(patsubst tools/%.c,$(BIN)/%,$(wildcard tools/qforge-*.c))
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))

.PHONY: all test demo asan install clean deps help check-deps check-test-deps fuzz
# Keep object files: they are intermediates of the pattern rules but reused by every binary.
.SECONDARY:
all: check-deps $(TOOLS)

help:
	@echo "make [all]      build libraries and tools into $(BIN)/"
	@echo "make test       build and run the Criterion suite and the tool tests"
	@echo "make demo       convert, quantize and evaluate the bundled demo model"
	@echo "make asan       rebuild everything with -fsanitize=address,undefined; a following make test runs it"
	@echo "make install    install tools, calibration data and man pages into PREFIX (default /usr/local)"
	@echo "make deps       install the Debian packages qforge needs"
	@echo "make MPI=1      the MPI build (mpirun -np N bin-mpi/qforge-quantize --gptq ...) in bin-mpi/"
	@echo "make clean      remove build outputs"

# Missing -dev packages: install them when root, else print the exact command and stop.
check-deps:
	@missing=""; for p in $(PKGS); do pkg-config --exists $$p 2>/dev/null || missing="$$missing $$p"; done; \
	command -v pkg-config >/dev/null || missing="pkg-config $$missing"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "qforge: installing missing packages for:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS) >/dev/null || exit 1; \
	  else \
	    echo "qforge: missing libraries:$$missing"; \
	    echo "run: sudo apt-get install -y $(APT_PKGS)"; exit 1; \
	  fi; \
	fi

# The tool tests also need python3 (they build malformed files with its standard library),
# /usr/bin/time, and man (man-db) with groff (groff-base) to render the man pages: same policy,
# only for `make test` and `make deps`.
check-test-deps:
	@missing=""; command -v python3 >/dev/null || missing="python3"; \
	[ -x /usr/bin/time ] || missing="$$missing time"; \
	command -v man >/dev/null || missing="$$missing man-db"; \
	command -v groff >/dev/null || missing="$$missing groff-base"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "qforge: installing $$missing for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "qforge: the tests need:$$missing"; echo "run: sudo apt-get install -y $$missing"; exit 1; \
	  fi; \
	fi

deps:
	@$(MAKE) --no-print-directory check-deps check-test-deps

$(BUILD)/%.o: %.c | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The version every tool prints (--version): the VERSION file, compiled into tools/cli.c only.
VERSION := $(shell cat VERSION 2>/dev/null || echo unknown)
$(BUILD)/tools/cli.o: CFLAGS += -DQFORGE_VERSION='"$(VERSION)"'
$(BUILD)/tools/cli.o: VERSION

# SIMD kernels: each file is compiled for exactly the features its path asks the CPU for at
# run time (runtime/kernels.c, isa_features); no file may use an instruction outside its set.
ISA_AVX2    := -mavx2 -mfma -mf16c
ISA_AVXVNNI := $(ISA_AVX2) -mavxvnni
ISA_AVX512  := $(ISA_AVX2) -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni
$(BUILD)/%_avx2.o: %_avx2.c | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_AVX2) -c $< -o $@
$(BUILD)/%_avxvnni.o: %_avxvnni.c | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_AVXVNNI) -c $< -o $@
$(BUILD)/%_avx512.o: %_avx512.c | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_AVX512) -c $< -o $@

.SECONDEXPANSION:
$(BUILD)/lib/%.a: $$(call obj,$$(call LIB_SRCS,%))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^

$(BIN)/qforge-%: $(BUILD)/tools/qforge-%.o $(call obj,$(CLI_SRC)) $(ALIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/tests/testutil.o $(call obj,$(CLI_SRC)) $(ALIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CRIT_LIBS)

# Criterion suites, one binary per module, then the tool tests (shell).
test: all $(TESTS) | check-test-deps
	@QFORGE_BIN=$(abspath $(BIN)) QFORGE_BUILD=$(abspath $(BUILD)) bash tests/run.sh $(TESTS)

# `make asan` rebuilds everything with sanitizers; the choice is kept in build/.san so that
# a following `make test` runs the sanitized binaries. `make clean` returns to the plain build.
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
asan:
	@if [ "$$(cat $(BUILD)/.san 2>/dev/null)" != "$(ASAN_FLAGS)" ]; then rm -rf $(BUILD) $(BIN); fi
	@mkdir -p $(BUILD) && echo "$(ASAN_FLAGS)" > $(BUILD)/.san
	@$(MAKE) --no-print-directory OPT=-O1 all $(TESTS)
	@echo "qforge: sanitizer build ready; 'make test' now runs it ('make clean' to go back)"

demo: all
	@bash models/demo.sh $(abspath $(BIN))

# Tools into PREFIX/bin, the calibration text into PREFIX/share/qforge (the tools look for it
# there, relative to their own directory), man pages into PREFIX/share/man/man1.
MANPAGES := $(wildcard man/qforge-*.1)
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/qforge $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 calibration/calibration.txt $(DESTDIR)$(PREFIX)/share/qforge/
	install -m 644 $(MANPAGES) $(DESTDIR)$(PREFIX)/share/man/man1/

clean:
	rm -rf build build-asan bin bin-asan build-fuzz bin-fuzz build-mpi bin-mpi


# ---- fuzz: libFuzzer targets tests/fuzz/fuzz_*.c -> bin-fuzz/ (clang; ASan+UBSan) ----
# Every library is rebuilt with coverage and sanitizers into build-fuzz/; `bench/fuzz.sh SECONDS`
# runs the targets. Not part of `all` or `test`.
FUZZ_CC     ?= clang
FUZZ_SAN    := -fsanitize=address,undefined -fsanitize=integer-divide-by-zero -fno-sanitize-recover=all
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter \
               -fopenmp -I. -MMD -MP $(PKG_CFLAGS) $(FUZZ_SAN)
ALL_LIB_SRCS := $(foreach d,$(LIBDIRS),$(call LIB_SRCS,$(d)))
FUZZ_LIBSRC := $(filter-out %_avx2.c %_avxvnni.c %_avx512.c,$(ALL_LIB_SRCS))
FUZZ_SIMD   := $(filter %_avx2.c %_avxvnni.c %_avx512.c,$(ALL_LIB_SRCS))
FUZZ_OBJS   := $(patsubst %.c,build-fuzz/%.o,$(FUZZ_LIBSRC) $(FUZZ_SIMD) $(wildcard tests/fuzz/support*.c))
FUZZ_BINS   := $(patsubst tests/fuzz/%.c,bin-fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

fuzz: $(FUZZ_BINS)

build-fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
build-fuzz/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(ISA_AVX2) -c $< -o $@
build-fuzz/%_avxvnni.o: %_avxvnni.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(ISA_AVXVNNI) -c $< -o $@
build-fuzz/%_avx512.o: %_avx512.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(ISA_AVX512) -c $< -o $@
# clang 14 lacks __builtin_cpu_supports("f16c"/"avxvnni"/"avx512bf16"): kernels.c asks
# tests/fuzz/support_cpu.c.
build-fuzz/runtime/kernels.o: FUZZ_CFLAGS += '-D__builtin_cpu_supports(f)=qforge_fuzz_cpu_supports(f)' \
	-include tests/fuzz/support_cpu.h
build-fuzz/libqforge.a: $(FUZZ_OBJS)
	@rm -f $@; ar rcs $@ $^
bin-fuzz/fuzz_%: build-fuzz/tests/fuzz/fuzz_%.o build-fuzz/libqforge.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -fopenmp -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(PKG_LIBS)
# The target files themselves are held to -Werror.
build-fuzz/tests/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -fsanitize=fuzzer-no-link -c $< -o $@
-include $(shell find build-fuzz -name '*.d' 2>/dev/null)

-include $(shell find build build-asan -name '*.d' 2>/dev/null)
