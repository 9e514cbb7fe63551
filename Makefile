# attograd build system.  Run `make help` for the list of targets.
#
# Everything is written under build/, one directory per *flavor*:
#   build/<mode>/           float flavor  (ag::real = float, the default)
#   build/<mode>-double/    double flavor (compiled with -DAG_USE_DOUBLE=1)
# where <mode> is release (default), debug or asan:   make MODE=debug test
#
# Inside a flavor directory:
#   libattograd.a           core/, autograd/ and layers/ sources
#   libattograd_core.a  libattograd_autograd.a  libattograd_layers.a
#                           the same objects, one archive per floor (what
#                           tests/programs/check_floors.sh links against)
#   obj/<dir>/<name>.o .d   object files and their header dependencies
#   unity/tests_N.cpp       the test files, #included in groups (compiled to obj/unity/)
#   tests/attograd_tests    all tests/*.cpp linked together
#   bench/bench  tutorials/NN_name  tools/<name>   one program per .cpp file
#
# How flavors work: one run of make builds one flavor, chosen by FLAVOR
# (float or double; you normally never set it).  When the double flavor is
# needed too (`make`, `make test`), make runs itself again with
# FLAVOR=double.  The two runs write to different directories, so they can
# safely build at the same time under `make -j2`.

MODE   ?= release
FLAVOR ?= float

# ------------------------------------------------------------------ flags

# -I. so that sources can #include "core/tensor.hpp" from any directory.
AG_CPPFLAGS := -I.
AG_CXXFLAGS := -std=c++20 -Wall -Wextra -Wpedantic
# No -lopenblas: core/blas.cpp loads OpenBLAS with dlopen at first use, after
# choosing its kernels (a linked OpenBLAS would pick them before main runs).
# -lbacktrace: GCC's libbacktrace, with which an ag::Error names the line of
# the program that made the failing call (core/backtrace.cpp).
AG_LDLIBS   := -lfmt -lbacktrace

ifeq ($(MODE),release)
  # -g1: readable backtraces (functions, files and lines) even when optimised;
  # the variables and types that gdb needs come with MODE=debug (full -g costs
  # a quarter more compile time).  -DNDEBUG: assert() is off.
  # -fvect-cost-model=dynamic: let the vectorizer also take loops that need a
  # run-time check or a remainder loop (the kernels are plain loops and
  # rely on it; -O2 alone vectorizes only the trivial ones).
  # -fno-trapping-math: floating-point exceptions are never read (no <cfenv>),
  # so a loop with a comparison in it (relu, the clamps of core/fast_math.hpp)
  # may compute both sides and select, which is what lets it vectorize.
  # -fno-math-errno: errno is never read after a math function either, so
  # std::sqrt is one instruction and vectorizes (Adam's update, LayerNorm).
  MODE_CXXFLAGS := -O2 -g1 -DNDEBUG -fvect-cost-model=dynamic -fno-trapping-math -fno-math-errno
  # The chapters, exercises and tools spend their time in the library, not in
  # their own code (long main functions: -O2 takes twice as long to compile
  # them as -O1, and -O1 a third longer than -O0; make tutorials takes 10 s
  # either way).
  PROGRAM_CXXFLAGS := -O0
else ifeq ($(MODE),debug)
  MODE_CXXFLAGS := -O0 -g3
else ifeq ($(MODE),asan)
  # AddressSanitizer + UndefinedBehaviorSanitizer.  UB aborts the program
  # instead of printing a warning nobody reads.
  MODE_CXXFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
                   -fno-sanitize-recover=undefined
  MODE_LDFLAGS  := -fsanitize=address,undefined
else
  $(error MODE must be release, debug or asan, not '$(MODE)')
endif

# ------------------------------------------------------------------ flavors

FLOAT_DIR  := build/$(MODE)
DOUBLE_DIR := build/$(MODE)-double

ifeq ($(FLAVOR),float)
  BUILD := $(FLOAT_DIR)
else ifeq ($(FLAVOR),double)
  BUILD := $(DOUBLE_DIR)
  # core/real.hpp then defines ag::real as double.
  FLAVOR_CPPFLAGS := -DAG_USE_DOUBLE=1
else
  $(error FLAVOR must be float or double, not '$(FLAVOR)')
endif

# The full compile and link commands.  CPPFLAGS, CXXFLAGS, LDFLAGS and LDLIBS
# given on the command line are added, e.g.  make CXXFLAGS=-march=native
COMPILE = $(strip $(CXX) $(AG_CPPFLAGS) $(FLAVOR_CPPFLAGS) $(CPPFLAGS) \
                  $(AG_CXXFLAGS) $(MODE_CXXFLAGS) $(CXXFLAGS))
LINK    = $(strip $(CXX) $(MODE_LDFLAGS) $(LDFLAGS))

# ------------------------------------------------------------------ sources

# $(wildcard) silently gives nothing for directories that do not exist yet.
LIB_SRCS      := $(sort $(wildcard core/*.cpp core/*/*.cpp autograd/*.cpp layers/*/*.cpp))
TEST_SRCS     := $(sort $(wildcard tests/*.cpp))
BENCH_SRCS    := $(wildcard bench/bench.cpp)
TUTORIAL_SRCS := $(sort $(wildcard tutorials/[0-9][0-9]_*.cpp))
TOOL_SRCS     := $(sort $(wildcard tools/*.cpp))
# Exercises (tutorials/exercises/README.md): the learner's file NN_name.cpp,
# its checker check/NN_name.cpp (main), the reference solution
# solutions/NN_name.cpp, and a deliberately wrong version in
# tests/exercises/NN_name_wrong.cpp that the checker must catch.
EXERCISE_SRCS := $(sort $(wildcard tutorials/exercises/[0-9][0-9]_*.cpp))
EXERCISES     := $(notdir $(basename $(EXERCISE_SRCS)))
WORKBENCH_SRCS := $(EXERCISE_SRCS) $(EXERCISES:%=tutorials/exercises/check/%.cpp) \
                  $(EXERCISES:%=tutorials/exercises/solutions/%.cpp) \
                  $(EXERCISES:%=tests/exercises/%_wrong.cpp) $(wildcard tests/programs/*.cpp)
ALL_SRCS      := $(LIB_SRCS) $(TEST_SRCS) $(BENCH_SRCS) $(TUTORIAL_SRCS) $(TOOL_SRCS) \
                 $(WORKBENCH_SRCS)

# Outputs of this flavor: dir/name.cpp is compiled to $(BUILD)/obj/dir/name.o,
# and a one-file program dir/name.cpp is linked to $(BUILD)/dir/name.
objects_of     = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))
LIB           := $(BUILD)/libattograd.a
FLOORS        := core autograd layers
FLOOR_LIBS    := $(FLOORS:%=$(BUILD)/libattograd_%.a)
TEST_BIN      := $(BUILD)/tests/attograd_tests
BENCH_BIN     := $(BENCH_SRCS:%.cpp=$(BUILD)/%)
TUTORIAL_BINS := $(TUTORIAL_SRCS:%.cpp=$(BUILD)/%)
TOOL_BINS     := $(TOOL_SRCS:%.cpp=$(BUILD)/%)
EXERCISE_BINS := $(EXERCISES:%=$(BUILD)/tutorials/exercises/%)
SOLUTION_BINS := $(EXERCISES:%=$(BUILD)/tutorials/exercises/solutions/%)
MISTAKE_BINS  := $(EXERCISES:%=$(BUILD)/tests/exercises/%_wrong)

# ------------------------------------------------------------------ output

# By default make runs silently (no commands echoed) and our recipes print
# short "CXX core/tensor.cpp [release]" lines.  `make V=1` shows the commands.
MAKEFLAGS += --no-print-directory
ifeq ($(V),1)
  SHOW := @true
else
  MAKEFLAGS += --silent
  SHOW := @printf '  %-5s %s  [%s]\n'
endif
TAG := $(notdir $(BUILD))

# ------------------------------------------------------------------ public targets

.PHONY: all test tutorials bench compdb clean deps help run exercises
.DEFAULT_GOAL := all

# Default: the library and every program of the float flavor. The double
# flavor (for the gradient checks) is built by `make test`.
all: build-lib build-tests build-programs build-workbench

# `make test`, `make tutorials`, `make bench` and `make tutorial-NN` build in
# parallel by default.  An explicit -jN of yours (even -j1) wins.
PAR = $(if $(filter -j%,$(MAKEFLAGS)),,-j$(shell nproc))

# These targets first check the dependencies (`deps`), *then* build.  A
# prerequisite cannot express "first" under -j, so they build with a second
# run of make once `deps` is done.
# Without ARGS, `make test` also runs every tutorial chapter (each counts as
# one test: it passes when the chapter reaches its target). With ARGS (a
# doctest filter) only the test binaries run.
# Also without ARGS: the formula-map check (tools/check_formulas.cpp) and,
# when gdb is installed, the debugger tests (tools/gdb/check_printers.sh: the
# pretty-printers, and docs/debugging.md's chapter recipes on the debug builds
# of chapters 03-07), each counted as one test.
GDB := $(shell command -v gdb 2>/dev/null)
# The debug builds the debugger tests run: chapters 03-07 (docs/debugging.md's recipes).
PRINTER_TEST_BIN := $(patsubst %.cpp,build/debug/%,$(sort $(wildcard $(foreach n,03 04 05 06 07,tutorials/$(n)_*.cpp))))
# Also without ARGS, four suites of checks, each counting its own cases: the
# exercises (each one's stub, solution and wrong version), an uncaught error
# in a `make run` program (debug and MODE builds), the tapes (tape_diff on
# two runs, and on attograd against PyTorch when /usr/bin/python3 has torch),
# and the floors (a program of core/ alone, one of autograd/ and core/, and
# no #include of a floor above).
SUITES := tests/exercises/check_exercises.sh tests/programs/check_uncaught.sh \
          tests/programs/check_tape.sh tests/programs/check_floors.sh
SUITE_PROGRAMS := tests/programs/uncaught_error.cpp tests/programs/point_attention_step.cpp
test: deps
	$(MAKE) $(PAR) FLAVOR=float build-tests build-double $(if $(ARGS),,build-tutorials build-workbench $(FLOAT_DIR)/tools/check_formulas)
	$(if $(ARGS)$(GDB),,@echo "gdb is not installed: the pretty-printers' test is skipped (apt-get install -y gdb)")
	$(if $(ARGS),,$(if $(GDB),$(MAKE) $(PAR) MODE=debug FLAVOR=float $(PRINTER_TEST_BIN)))
	$(if $(ARGS),,$(MAKE) $(PAR) MODE=debug FLAVOR=float FILE=tests/programs/uncaught_error.cpp build-run)
	$(if $(ARGS),,$(foreach f,$(SUITE_PROGRAMS),$(MAKE) $(PAR) FLAVOR=float FILE=$(f) build-run &&) true)
	AG_BUILD=$(FLOAT_DIR) tools/run_tests.sh $(FLOAT_DIR)/tests/attograd_tests \
	                       $(DOUBLE_DIR)/tests/attograd_tests \
	                   $(if $(ARGS),,--programs $(TUTORIAL_BINS) $(FLOAT_DIR)/tools/check_formulas \
	                                  $(if $(GDB),tools/gdb/check_printers.sh) \
	                             --suites $(SUITES)) -- $(ARGS)

tutorials: deps
ifeq ($(TUTORIAL_SRCS),)
	@echo "no tutorials yet"
else
	$(MAKE) $(PAR) FLAVOR=float build-tutorials
	failed=; passed=0; start=$$(date +%s); \
	for t in $(TUTORIAL_SRCS:%.cpp=$(FLOAT_DIR)/%); do \
	    echo "=== $$t"; \
	    if $$t; then passed=$$((passed + 1)); else failed="$$failed $$(basename $$t)"; fi; \
	done; \
	echo "tutorials: $$passed of $(words $(TUTORIAL_SRCS)) chapters reached their target in $$(( $$(date +%s) - start )) s$${failed:+; missed:$$failed}"; \
	[ -z "$$failed" ]
endif

# make tutorial-03  builds and runs tutorials/03_<something>.cpp
tutorial_src = $(wildcard tutorials/$(1)_*.cpp)
tutorial-%: deps
	$(if $(call tutorial_src,$*),,$(error No tutorial tutorials/$*_*.cpp. Available: $(or $(TUTORIAL_SRCS),none yet)))
	$(if $(word 2,$(call tutorial_src,$*)),$(error Several tutorials match tutorials/$*_*.cpp: $(call tutorial_src,$*)))
	$(MAKE) $(PAR) FLAVOR=float $(FLOAT_DIR)/$(basename $(call tutorial_src,$*))
	@echo "=== $(FLOAT_DIR)/$(basename $(call tutorial_src,$*))"
	$(FLOAT_DIR)/$(basename $(call tutorial_src,$*)) $(ARGS)

# make debug-03  builds chapter 03 with MODE=debug and starts it in gdb with
# attograd's pretty-printers loaded, in reference mode (every op and layer runs
# its plain formula code; AG_REFERENCE=0 make debug-03 runs the fast twins), and
# stops on the first line of the function the chapter names in its line
# "// make debug-NN breaks in: <function>" (its main layer's forward). gdb stops
# on a function's opening brace, before the arguments are set up; the `next`
# after `run` takes it to the first line of the body, arguments in place.
debug-%: deps
	$(if $(call tutorial_src,$*),,$(error No tutorial tutorials/$*_*.cpp. Available: $(or $(TUTORIAL_SRCS),none yet)))
	$(if $(word 2,$(call tutorial_src,$*)),$(error Several tutorials match tutorials/$*_*.cpp: $(call tutorial_src,$*)))
	@command -v gdb >/dev/null || { echo "gdb is not installed; run: apt-get install -y gdb" >&2; exit 1; }
	$(MAKE) $(PAR) MODE=debug FLAVOR=float build/debug/$(basename $(call tutorial_src,$*))
	gdb -q -iex "add-auto-load-safe-path $(CURDIR)/build" \
	    -ex "set environment AG_REFERENCE=$(or $(AG_REFERENCE),1)" \
	    $(foreach f,$(shell sed -n 's|^// make debug-[0-9]* breaks in: *||p' $(call tutorial_src,$*)),-ex "break $(f)") \
	    -ex run -ex next --args build/debug/$(basename $(call tutorial_src,$*)) $(ARGS)

# make exercise-03  builds the learner's tutorials/exercises/03_*.cpp with its
# checker and runs it: every step and gradient against the library's reference.
# make solution-03  the same with the reference solution.
exercise_src = $(wildcard tutorials/exercises/$(1)_*.cpp)
# The programs of chapter $(1)'s exercises; $(2) is solutions/ for the solutions.
exercise_programs = $(foreach e,$(notdir $(basename $(call exercise_src,$(1)))),$(FLOAT_DIR)/tutorials/exercises/$(2)$(e))
exercise-%: deps
	$(if $(call exercise_src,$*),,$(error No exercise tutorials/exercises/$*_*.cpp. Available: $(or $(EXERCISES),none yet)))
	$(MAKE) $(PAR) FLAVOR=float $(call exercise_programs,$*,)
	failed=; for e in $(call exercise_programs,$*,); do echo "=== $$e"; $$e $(ARGS) || failed=1; done; [ -z "$$failed" ]
solution-%: deps
	$(if $(call exercise_src,$*),,$(error No exercise tutorials/exercises/$*_*.cpp. Available: $(or $(EXERCISES),none yet)))
	$(MAKE) $(PAR) FLAVOR=float $(call exercise_programs,$*,solutions/)
	failed=; for e in $(call exercise_programs,$*,solutions/); do echo "=== $$e"; $$e $(ARGS) || failed=1; done; [ -z "$$failed" ]

# make exercises  checks every exercise as it is now, and lists which pass.
exercises: deps
	$(MAKE) $(PAR) FLAVOR=float $(EXERCISE_BINS)
	passed=; todo=; \
	for e in $(EXERCISE_BINS); do \
	    if $$e > /dev/null 2>&1; then passed="$$passed $$(basename $$e)"; else todo="$$todo $$(basename $$e)"; fi; \
	done; \
	echo "exercises passed:$${passed:- none}"; echo "to do (make exercise-NN for the details):$${todo:- none}"

# make run FILE=mine.cpp [MODE=debug] [ARGS=...]  builds a one-file program of
# yours against the library (the flags and build directory of MODE, as every
# program here) and runs it from this directory. The program is written to
# build/<mode>/run/<its path without .cpp>; a file outside this directory
# goes to build/<mode>/run/abs/<its absolute path>. No spaces in the path.
run_name = $(if $(filter $(CURDIR)/%,$(abspath $(1))),$(patsubst $(CURDIR)/%,%,$(abspath $(1))),abs$(abspath $(1)))
RUN_PROGRAM = $(BUILD)/run/$(basename $(call run_name,$(FILE)))
run: deps
	$(if $(FILE),,$(error make run needs the program: make run FILE=path/to/mine.cpp (one .cpp file with main)))
	$(if $(wildcard $(FILE)),,$(error make run: $(FILE) does not exist))
	$(MAKE) $(PAR) FLAVOR=float build-run
	@echo "=== $(FLOAT_DIR)/run/$(basename $(call run_name,$(FILE)))"
	$(FLOAT_DIR)/run/$(basename $(call run_name,$(FILE))) $(ARGS)

# Benchmarks only make sense optimised: always release mode, float flavor.
bench: deps
	$(if $(BENCH_SRCS),,$(error bench/bench.cpp does not exist yet))
	$(MAKE) $(PAR) MODE=release FLAVOR=float build-bench
	@echo "=== build/release/bench/bench"
	build/release/bench/bench $(ARGS)

# compile_commands.json for clangd and other editors, with the exact flags
# of the current MODE (float flavor).  One JSON entry per source file.
compdb:
	{ printf '['; sep=; \
	  for src in $(ALL_SRCS); do \
	    printf '%s\n  {"directory": "%s", "file": "%s", "command": "%s"}' "$$sep" \
	      "$(CURDIR)" "$$src" "$(COMPILE) -c $$src -o $(BUILD)/obj/$${src%.cpp}.o"; \
	    sep=,; \
	  done; \
	  printf '\n]\n'; } > compile_commands.json
	@echo "wrote compile_commands.json ($(words $(ALL_SRCS)) files, MODE=$(MODE))"

clean:
	@echo "removing build/ and compile_commands.json"
	rm -rf build compile_commands.json

# Installs libopenblas-dev, doctest-dev and libfmt-dev if needed (as root),
# or says which command to run.
deps:
	tools/ensure_deps.sh

help:
	@echo 'attograd: make [MODE=release|debug|asan] [V=1] [target]'
	@echo ''
	@echo '  all (default)  float flavor: library, tests, bench, tutorials, tools, exercises'
	@echo '  test           check deps, build float + double tests, run both, then'
	@echo '                 every tutorial chapter (each must reach its target) and the'
	@echo '                 suites (exercises, uncaught errors, tapes, floors)'
	@echo '                 one test case:  make test ARGS='"'"'-tc="matmul*"'"'"
	@echo '  tutorials      build and run every tutorials/NN_*.cpp in order'
	@echo '  tutorial-NN    build and run tutorials/NN_*.cpp   (make tutorial-01)'
	@echo '  debug-NN       chapter NN in gdb (debug build, printers loaded, stopped in its layer)'
	@echo '  exercise-NN    check your tutorials/exercises/NN_*.cpp against the reference'
	@echo '  solution-NN    the same with the reference solution (tutorials/exercises/solutions/)'
	@echo '  exercises      which exercises pass now'
	@echo '  run FILE=x.cpp build your one-file program x.cpp against the library and run it'
	@echo '  bench          build (always release, float) and run bench/bench.cpp'
	@echo '  compdb         write compile_commands.json for clangd/editors'
	@echo '  deps           check/install libopenblas-dev doctest-dev libfmt-dev'
	@echo '  clean          remove build/ and compile_commands.json'
	@echo ''
	@echo 'Output goes to build/$$MODE/ (float) and build/$$MODE-double/ (double).'
	@echo 'MODE=asan adds AddressSanitizer + UBSan.  V=1 shows full commands.'

# ------------------------------------------------------------------ one flavor

# Building blocks used above; each builds the current FLAVOR only.
.PHONY: build-lib build-tests build-programs build-bench build-tutorials build-double \
        build-workbench build-run

build-lib:       $(LIB) $(FLOOR_LIBS)
build-tests:     $(TEST_BIN)
build-programs:  $(BENCH_BIN) $(TUTORIAL_BINS) $(TOOL_BINS)
build-bench:     $(BENCH_BIN)
build-tutorials: $(TUTORIAL_BINS)
build-workbench: $(EXERCISE_BINS) $(SOLUTION_BINS) $(MISTAKE_BINS) $(BUILD)/tools/tape_diff

# The double flavor is built by a second make with its own build directory.
build-double:
	$(MAKE) FLAVOR=double build-lib build-tests

# Precompiled headers.  The standard library and fmt headers that nearly every
# file includes cost ~0.5 s of parsing per file; a precompiled copy of them,
# parsed once, cuts a clean build by a fifth.  GCC uses one only when it was
# made with the same flags, so there is one per set: library (and bench),
# tests, chapters and tools.  The tests' and the programs' also hold
# layers/nn.hpp, which nearly all of them include (the library's files
# include only the floors below them; the floor-check programs of
# tests/programs/ get no precompiled header).  Files still include what they
# use: the precompiled header only saves the parsing (and
# compile_commands.json leaves it out).  Each lists the headers it was made
# from (-MMD), so editing one remakes it.
PCH_HEADERS := algorithm cmath cstdint functional memory string vector fmt/format.h
pch = $(BUILD)/pch/$(1)/common.hpp
use_pch = -include $(call pch,$(1)) -Winvalid-pch
# Rewritten only when its text changes, so that an edit elsewhere in the
# Makefile does not remake the precompiled headers and every file using them.
$(BUILD)/pch/%/common.hpp: Makefile
	@mkdir -p $(@D)
	@{ printf '#include <%s>\n' $(PCH_HEADERS); \
	   $(if $(filter lib,$*),,printf '#include "layers/nn.hpp"\n';) } > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi
$(call pch,lib).gch: $(call pch,lib)
	$(SHOW) PCH $< $(TAG)
	$(COMPILE) -MMD -MP -MF $@.d -x c++-header $< -o $@
$(call pch,tests).gch: $(call pch,tests)
	$(SHOW) PCH $< $(TAG)
	$(COMPILE) $(TEST_CXXFLAGS) -MMD -MP -MF $@.d -x c++-header $< -o $@
$(call pch,programs).gch: $(call pch,programs)
	$(SHOW) PCH $< $(TAG)
	$(COMPILE) $(PROGRAM_CXXFLAGS) -MMD -MP -MF $@.d -x c++-header $< -o $@
-include $(wildcard $(BUILD)/pch/*/common.hpp.gch.d)

# Compile.  -MMD -MP write obj/.../name.d next to the object, listing the
# headers it includes, so editing a header recompiles what depends on it.
$(BUILD)/obj/%.o: %.cpp | $(call pch,lib).gch
	$(SHOW) CXX $< $(TAG)
	@mkdir -p $(@D)
	$(COMPILE) $(call use_pch,lib) -MMD -MP -c $< -o $@

# The chapters, exercises and tools (PROGRAM_CXXFLAGS: -O0 in release mode).
# They depend on their precompiled header itself, as the test objects do (see
# there): an edit of a header it holds reaches them only through the remade .gch.
$(BUILD)/obj/tutorials/%.o: tutorials/%.cpp $(call pch,programs).gch
	$(SHOW) CXX $< $(TAG)
	@mkdir -p $(@D)
	$(COMPILE) $(PROGRAM_CXXFLAGS) $(call use_pch,programs) -MMD -MP -c $< -o $@
$(BUILD)/obj/tools/%.o: tools/%.cpp $(call pch,programs).gch
	$(SHOW) CXX $< $(TAG)
	@mkdir -p $(@D)
	$(COMPILE) $(PROGRAM_CXXFLAGS) $(call use_pch,programs) -MMD -MP -c $< -o $@

# core/backtrace.cpp knows the directory attograd is built in, to recognise
# attograd's headers in a program that includes them by absolute path.
$(BUILD)/obj/core/backtrace.o: AG_CPPFLAGS += -DAG_SOURCE_ROOT='"$(CURDIR)"'

# The library's cold files run once per program, per save or per error, never
# in a training step's loop: the file formats, the tape and its comparison,
# the Graphviz export, printing, gradcheck's loop (its time is in the function
# it checks), the BLAS core probe (its time is in BLAS) and backtraces. In
# release mode they are compiled at -O1: 18 s of CPU instead of 23 s.
# (private: the precompiled header they wait for must keep the mode's -O2;
# GCC crashes on a header built with one level and used with another.)
COLD_SRCS := $(wildcard core/io/*.cpp) autograd/dot.cpp autograd/tape.cpp \
             autograd/tape_compare.cpp autograd/trace.cpp autograd/gradcheck.cpp \
             core/print.cpp core/blas_choice.cpp core/backtrace.cpp \
             layers/framework/data.cpp layers/framework/standard_scaler.cpp \
             layers/framework/lr_scheduler.cpp
ifeq ($(MODE),release)
$(call objects_of,$(COLD_SRCS)): private MODE_CXXFLAGS += -O1
endif

# Test code is compiled without optimisation in every mode: it is the bulk of
# the compile time (doctest's assertion macros), and it runs in seconds. The
# library it tests keeps the flags of its mode.  DOCTEST_CONFIG_SUPER_FAST_ASSERTS
# makes each CHECK a function call instead of an inlined try/catch block.
# The test objects depend on the tests' precompiled header itself, not only on
# its being made first: the headers it holds (layers/nn.hpp and everything it
# includes) are missing from the objects' -MMD lists, so an edit of one of
# them reaches the test objects only through the remade .gch.
TEST_CXXFLAGS := -O0 -DDOCTEST_CONFIG_SUPER_FAST_ASSERTS
$(BUILD)/obj/tests/%.o: tests/%.cpp $(call pch,tests).gch
	$(SHOW) CXX $< $(TAG)
	@mkdir -p $(@D)
	$(COMPILE) $(TEST_CXXFLAGS) $(call use_pch,tests) -MMD -MP -c $< -o $@

# The test files are compiled in groups ("unity" builds): $(BUILD)/unity/tests_N.cpp
# #includes UNITY_GROUP_SIZE test files (tests/test_*.cpp in alphabetical
# order) and is compiled with the flags and precompiled header above.  A test
# file compiled alone pays again for loading the precompiled header and for
# instantiating the same doctest and fmt templates: 8 files take 16.3 s one by
# one, 11.9 s as one group.  In groups of 8 the tests take a third less CPU
# (38 CPU-s instead of 60; make -j2 of the test binary, library built: 20 s
# instead of 31 s) and a clean make -j2 about 10 s less.  Larger groups save a
# little more, but an edited test file recompiles its whole group: 7 s in
# groups of 8 (3.5 s alone; groups of 6: 6 s for 41 CPU-s; groups of 22: 20 s
# for 34 CPU-s).
# Each test file still compiles on its own (compile_commands.json lists them
# one by one, for clangd and clang-tidy), so a helper that several files
# share lives in tests/helpers.hpp, and a file's own helpers have names that
# no other file uses.  A group file is rewritten only when its list changes
# (a test file added or removed); -MMD -MP lists the test files each group
# includes, so editing one recompiles its group only.
UNITY_GROUP_SIZE := 8
TEST_CASE_SRCS   := $(filter-out tests/main.cpp,$(TEST_SRCS))
# The position in TEST_CASE_SRCS of each group's first file: 1 9 17 ...
UNITY_STARTS     := $(shell seq 1 $(UNITY_GROUP_SIZE) $(words $(TEST_CASE_SRCS)))
UNITY_GROUPS     := $(shell seq 1 $(words $(UNITY_STARTS)))
UNITY_SRCS       := $(UNITY_GROUPS:%=$(BUILD)/unity/tests_%.cpp)
UNITY_OBJS       := $(UNITY_GROUPS:%=$(BUILD)/obj/unity/tests_%.o)
# The test files of group $(1).
unity_members = $(wordlist 1,$(UNITY_GROUP_SIZE),$(wordlist $(word $(1),$(UNITY_STARTS)),\
                  $(words $(TEST_CASE_SRCS)),$(TEST_CASE_SRCS)))
.PHONY: FORCE
$(UNITY_SRCS): $(BUILD)/unity/tests_%.cpp: FORCE
	@mkdir -p $(@D)
	@{ echo '// Test files compiled as one translation unit (written by the Makefile).'; \
	   printf '#include "%s"\n' $(call unity_members,$*); } > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
# A test file included from a group is found as ./tests/test_x.cpp (through
# -I.); -fmacro-prefix-map makes its __FILE__, which doctest prints, read
# tests/test_x.cpp as when it is compiled on its own.
$(UNITY_OBJS): $(BUILD)/obj/unity/tests_%.o: $(BUILD)/unity/tests_%.cpp $(call pch,tests).gch
	$(SHOW) CXX "$< ($(notdir $(basename $(call unity_members,$*))))" $(TAG)
	@mkdir -p $(@D)
	$(COMPILE) $(TEST_CXXFLAGS) -fmacro-prefix-map=./= $(call use_pch,tests) -MMD -MP -c $< -o $@
-include $(UNITY_OBJS:.o=.d)
# The floor-check programs include only the floors they test, and see only those.
$(BUILD)/obj/tests/programs/%.o: tests/programs/%.cpp
	$(SHOW) CXX $< $(TAG)
	@mkdir -p $(@D)
	$(COMPILE) $(TEST_CXXFLAGS) -MMD -MP -c $< -o $@

# The static library.  Written anew each time (rather than updated in place
# with `ar r`) so that it holds exactly the current objects.
$(LIB): $(call objects_of,$(LIB_SRCS))
	$(SHOW) AR $@ $(TAG)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

# One archive per floor, from the same objects: a program of the floors below
# links against theirs alone (tests/programs/check_floors.sh).
$(foreach f,$(FLOORS),$(eval $(BUILD)/libattograd_$(f).a: $(call objects_of,$(filter $(f)/%,$(LIB_SRCS)))))
$(FLOOR_LIBS):
	$(SHOW) AR $@ $(TAG)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

# Programs: their object file(s), then the library, then system libraries
# (a static library must come after the objects that use it).
# Beside each program, <program>-gdb.py: gdb runs it when it loads the
# program (once build/ is on its auto-load safe path, see docs/debugging.md),
# and it loads the pretty-printers of tools/gdb/attograd.py.
write_gdb_script = printf 'import sys, gdb\nsys.path.insert(0, "%s/tools/gdb")\nimport attograd\nattograd.register(gdb.current_objfile())\n' "$(CURDIR)" > $@-gdb.py

$(TEST_BIN): $(BUILD)/obj/tests/main.o $(UNITY_OBJS) $(LIB)
	$(SHOW) LINK $@ $(TAG)
	@mkdir -p $(@D)
	$(LINK) $^ $(AG_LDLIBS) $(LDLIBS) -o $@
	$(write_gdb_script)

$(BENCH_BIN) $(TUTORIAL_BINS) $(TOOL_BINS): $(BUILD)/%: $(BUILD)/obj/%.o $(LIB)
	$(SHOW) LINK $@ $(TAG)
	@mkdir -p $(@D)
	$(LINK) $^ $(AG_LDLIBS) $(LDLIBS) -o $@
	$(write_gdb_script)

# The floor checks (tests/programs/check_floors.sh links them): a program of
# core/ alone against libattograd_core.a, one of autograd/ against
# libattograd_autograd.a and libattograd_core.a, and nothing else of attograd.
# Every object of those archives goes in (--whole-archive), so a file of a
# floor that calls a function of a floor above fails the link even when the
# program does not use that file.
FLOOR_PROGRAMS := $(BUILD)/tests/programs/core_only $(BUILD)/tests/programs/autograd_only
$(BUILD)/tests/programs/core_only: $(BUILD)/obj/tests/programs/core_only.o \
                                   $(BUILD)/libattograd_core.a
$(BUILD)/tests/programs/autograd_only: $(BUILD)/obj/tests/programs/autograd_only.o \
                                       $(BUILD)/libattograd_autograd.a $(BUILD)/libattograd_core.a
$(FLOOR_PROGRAMS):
	$(SHOW) LINK $@ $(TAG)
	@mkdir -p $(@D)
	$(LINK) $< -Wl,--whole-archive $(filter %.a,$^) -Wl,--no-whole-archive \
	        $(AG_LDLIBS) -ldl -lpthread $(LDLIBS) -o $@

# An exercise's program: the learner's file (or the solution, or the wrong
# version) with the exercise's checker, which holds main().
.SECONDEXPANSION:
$(EXERCISE_BINS): $(BUILD)/tutorials/exercises/%: $(BUILD)/obj/tutorials/exercises/%.o $(BUILD)/obj/tutorials/exercises/check/$$*.o $(LIB)
	$(SHOW) LINK $@ $(TAG)
	@mkdir -p $(@D)
	$(LINK) $^ $(AG_LDLIBS) $(LDLIBS) -o $@
	$(write_gdb_script)
$(SOLUTION_BINS): $(BUILD)/tutorials/exercises/solutions/%: $(BUILD)/obj/tutorials/exercises/solutions/%.o $(BUILD)/obj/tutorials/exercises/check/$$*.o $(LIB)
	$(SHOW) LINK $@ $(TAG)
	@mkdir -p $(@D)
	$(LINK) $^ $(AG_LDLIBS) $(LDLIBS) -o $@
	$(write_gdb_script)
$(MISTAKE_BINS): $(BUILD)/tests/exercises/%_wrong: $(BUILD)/obj/tests/exercises/%_wrong.o $(BUILD)/obj/tutorials/exercises/check/$$*.o $(LIB)
	$(SHOW) LINK $@ $(TAG)
	@mkdir -p $(@D)
	$(LINK) $^ $(AG_LDLIBS) $(LDLIBS) -o $@
	$(write_gdb_script)

# `make run`'s program (FILE given): compiled with the flags of MODE, as the
# chapters are, and linked like them.
ifneq ($(FILE),)
RUN_OBJECT := $(RUN_PROGRAM).o
build-run: $(RUN_PROGRAM)
$(RUN_OBJECT): $(FILE)
	$(SHOW) CXX $< $(TAG)
	@mkdir -p $(@D)
	$(COMPILE) -MMD -MP -c $< -o $@
$(RUN_PROGRAM): $(RUN_OBJECT) $(LIB)
	$(SHOW) LINK $@ $(TAG)
	@mkdir -p $(@D)
	$(LINK) $^ $(AG_LDLIBS) $(LDLIBS) -o $@
	$(write_gdb_script)
-include $(RUN_PROGRAM).d
endif

# Header dependencies from earlier builds (missing on the first build: fine).
-include $(patsubst %.o,%.d,$(call objects_of,$(ALL_SRCS)))

# ------------------------------------------------------------------ safety

# A recipe that fails must not leave a half-written file that looks up to date.
.DELETE_ON_ERROR:

# `make -j2 test tutorials` would start two makes building the same float
# objects at the same time.  With several goals on the command line, run the
# goals one after another; each still builds in parallel inside.
ifeq ($(MAKELEVEL),0)
ifneq ($(word 2,$(MAKECMDGOALS)),)
.NOTPARALLEL:
endif
endif
