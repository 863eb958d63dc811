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

# Dependencies: pkg-config modules, and the Debian packages that provide them plus the tools the
# tests use (python3 builds malformed inputs, /usr/bin/time from "time" measures memory, man from
# man-db with groff from groff-base renders the man pages).
PKGS      := jansson zlib gsl openblas criterion libpcre2-8 libcrypto plplot
APT_PKGS  := build-essential pkg-config libjansson-dev zlib1g-dev libgsl-dev libopenblas-dev libcriterion-dev \
             libpcre2-dev libssl-dev libplplot-dev plplot-driver-cairo python3 time man-db groff-base
ifeq ($(MPI),1)
PKGS      += ompi-c
APT_PKGS  += libopenmpi-dev openmpi-bin
endif
APT_CMD   := apt-get install -y $(APT_PKGS)
SUDO       = $(if $(filter 0,$(shell id -u)),,sudo )

OPT     ?= -O2
SAN     ?= $(shell cat $(BUILD)/.san 2>/dev/null)
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -fopenmp -I. -MMD -MP $(SAN) $(MPI_CFLAGS)
LDFLAGS += -fopenmp $(SAN)

PKG_CFLAGS = $(shell pkg-config --cflags jansson zlib gsl openblas libpcre2-8 libcrypto plplot 2>/dev/null)
# GSL is linked against OpenBLAS as its CBLAS, not against libgslcblas.
PKG_LIBS   = $(filter-out -lgslcblas,$(shell pkg-config --libs gsl 2>/dev/null)) \
             $(shell pkg-config --libs plplot openblas jansson zlib libpcre2-8 libcrypto 2>/dev/null) -lm
CRIT_LIBS  = $(shell pkg-config --libs criterion 2>/dev/null)
CFLAGS    += $(PKG_CFLAGS)

# Library folders, each built into one static archive, in link order (users before what they use).
LIBDIRS := $(foreach d,report pipeline runtime input tokenizer arch libquant libgguf common,$(if $(wildcard $(d)/*.c),$(d)))
LIB_SRCS = $(wildcard $(1)/*.c)
CLI_SRC  := tools/cli.c tools/progress.c tools/cli_budget.c tools/quantize_lines.c tools/kld_lines.c

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
ALIBS := $(foreach d,$(LIBDIRS),$(BUILD)/lib/$(d).a)

TOOLS := $(patsubst tools/%.c,$(BIN)/%,$(wildcard tools/qforge-*.c))
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))

.PHONY: all tests test demo asan install clean deps help check-deps fuzz
# Keep object files: they are intermediates of the pattern rules but reused by every binary.
.SECONDARY:
all: check-deps $(TOOLS)

help:
	@echo "make [all]      build libraries and tools into $(BIN)/ (stops if a library is missing)"
	@echo "make deps       install missing Debian packages (apt-get as root, else prints the command)"
	@echo "make tests      build the tools and the test binaries without running them"
	@echo "make test       make deps, build, run the Criterion suite and the tool tests"
	@echo "make demo       make deps, build, convert, quantize and evaluate the bundled demo model"
	@echo "make asan       rebuild everything with -fsanitize=address,undefined; a following make test runs it"
	@echo "make install    install tools, calibration data and man pages into PREFIX (default /usr/local)"
	@echo "make MPI=1      the MPI build (mpirun -np N bin-mpi/qforge-quantize --gptq ...) in bin-mpi/"
	@echo "make clean      remove build outputs"

# Sets $$missing to what the build lacks; with "all", what the tests lack too.
FIND_MISSING = missing=""; command -v $(firstword $(CC)) >/dev/null || missing=" $(firstword $(CC))"; \
	if command -v pkg-config >/dev/null; then \
	  for p in $(PKGS); do pkg-config --exists $$p || missing="$$missing $$p"; done; \
	else missing="$$missing pkg-config"; fi; \
	if [ "$(1)" = all ]; then \
	  command -v python3 >/dev/null || missing="$$missing python3"; \
	  [ -x /usr/bin/time ] || missing="$$missing /usr/bin/time"; \
	  command -v man >/dev/null || missing="$$missing man"; \
	  command -v groff >/dev/null || missing="$$missing groff"; fi

# A plain build never installs: a missing library stops it with the command that installs it.
check-deps:
	@$(call FIND_MISSING,build); \
	if [ -n "$$missing" ]; then \
	  echo "qforge: missing:$$missing"; \
	  echo "qforge: 'make deps' installs them; or run: $(SUDO)apt-get update && $(SUDO)$(APT_CMD)"; \
	  exit 1; \
	fi

# The one step that installs: apt-get when root, else print the exact command and stop.
# `make test` and `make demo` run it first.
deps:
	@$(call FIND_MISSING,all); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "qforge: installing Debian packages for:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(APT_CMD) -qq >/dev/null || exit 1; \
	  else \
	    echo "qforge: missing:$$missing"; \
	    echo "run: $(SUDO)apt-get update && $(SUDO)$(APT_CMD)"; exit 1; \
	  fi; \
	fi

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

# Tools and test binaries, built but not run (one phony goal, so a no-op build stays quiet).
tests: all $(TESTS)

# Criterion suites, one binary per module, then the tool tests (shell). Dependencies first.
test: deps
	@$(MAKE) --no-print-directory tests
	@QFORGE_BIN=$(abspath $(BIN)) QFORGE_BUILD=$(abspath $(BUILD)) bash tests/run.sh $(TESTS)

# `make asan` rebuilds everything with sanitizers; the choice is kept in build/.san so that
# a following `make test` runs the sanitized binaries. `make clean` returns to the plain build.
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
asan:
	@if [ "$$(cat $(BUILD)/.san 2>/dev/null)" != "$(ASAN_FLAGS)" ]; then rm -rf $(BUILD) $(BIN); fi
	@mkdir -p $(BUILD) && echo "$(ASAN_FLAGS)" > $(BUILD)/.san
	@$(MAKE) --no-print-directory OPT=-O1 tests
	@echo "qforge: sanitizer build ready; 'make test' now runs it ('make clean' to go back)"

demo: deps
	@$(MAKE) --no-print-directory all
	@bash models/demo.sh $(abspath $(BIN))

# Tools into PREFIX/bin, the calibration text and the held-out evaluation text (qforge-sweep's
# default) into PREFIX/share/qforge (the tools look for them there, relative to their own
# directory), man pages into PREFIX/share/man/man1.
MANPAGES := $(wildcard man/qforge-*.1)
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/qforge $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 calibration/calibration.txt models/eval-classics.txt $(DESTDIR)$(PREFIX)/share/qforge/
	install -m 644 $(MANPAGES) $(DESTDIR)$(PREFIX)/share/man/man1/

clean:
	rm -rf $(BUILD) $(BIN) build-fuzz bin-fuzz build-mpi bin-mpi


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

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
