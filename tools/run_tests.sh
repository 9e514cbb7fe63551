#!/usr/bin/env bash
# Runs attograd test binaries one after the other and adds up their results.
#
#   tools/run_tests.sh BIN... [--programs PROG...] [--suites SUITE...] [-- ARGS...]
#
# Each BIN runs twice: in fast mode (the default), then in reference mode
# (AG_REFERENCE=1: every op and layer runs its plain formula code). ARGS are
# given to every run. Each PROG (a tutorial chapter) is run without
# arguments and counts as one test: passed when it exits with status 0 (a
# chapter exits non-zero when it misses its target). Each SUITE (a script of
# checks) is run once, after the programs, and counts its own cases: like a
# BIN, it ends with a line such as  exercises: 15 passed, 0 failed
#
# Each binary (tests/main.cpp) ends its output with a line such as
#   float: 12 passed, 0 failed
# This script shows each binary's output, reads that line, and prints as its
# very last line the totals:
#   27 passed, 0 failed
# A binary that crashes or fails without printing the line counts as 1 failed.
# Exit status is non-zero if anything failed.
set -uo pipefail   # no -e: a failing test binary must not stop the script

bins=()
programs=()
while [[ $# -gt 0 && $1 != "--" && $1 != "--programs" ]]; do
    bins+=("$1")
    shift
done
suites=()
if [[ $# -gt 0 && $1 == "--programs" ]]; then
    shift
    while [[ $# -gt 0 && $1 != "--" && $1 != "--suites" ]]; do
        programs+=("$1")
        shift
    done
fi
if [[ $# -gt 0 && $1 == "--suites" ]]; then
    shift
    while [[ $# -gt 0 && $1 != "--" ]]; do
        suites+=("$1")
        shift
    done
fi
[[ $# -gt 0 ]] && shift   # drop the "--"
args=("$@")

if [[ ${#bins[@]} -eq 0 ]]; then
    echo "usage: $0 TEST_BINARY... [-- ARGS...]" >&2
    exit 2
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

summary_re='^[A-Za-z0-9_]+: ([0-9]+) passed, ([0-9]+) failed$'
total_passed=0
total_failed=0

for run in "${bins[@]/#/0:}" "${bins[@]/#/1:}"; do
    reference=${run%%:*}
    bin=${run#*:}
    echo "=== AG_REFERENCE=$reference $bin${args[*]:+ ${args[*]}}"
    # stderr is merged so that crash and sanitizer reports appear in order.
    AG_REFERENCE=$reference "$bin" "${args[@]}" 2>&1 | tee "$log"
    code=${PIPESTATUS[0]}

    line=$(grep -E "$summary_re" "$log" | tail -n 1)
    if [[ $line =~ $summary_re ]]; then
        passed=${BASH_REMATCH[1]}
        failed=${BASH_REMATCH[2]}
        if [[ $code -ne 0 && $failed -eq 0 ]]; then
            # e.g. a leak found by AddressSanitizer after main() returned
            echo "run_tests: $bin reported no failures but exited with code $code"
            failed=1
        fi
    else
        passed=0
        failed=1
        if [[ $code -gt 128 ]]; then
            echo "run_tests: $bin crashed (exit code $code, signal $(kill -l $((code - 128)) 2>/dev/null || echo $((code - 128))))"
        elif [[ $code -eq 127 || $code -eq 126 ]]; then
            echo "run_tests: $bin could not be run (exit code $code; was it built?)"
        else
            echo "run_tests: $bin exited with code $code without printing its summary line"
        fi
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
done

for prog in "${programs[@]}"; do
    echo "=== $prog"
    start=$SECONDS
    "$prog" 2>&1 | tail -n 3
    code=${PIPESTATUS[0]}
    if [[ $code -eq 0 ]]; then
        echo "run_tests: $prog reached its target ($((SECONDS - start)) s)"
        total_passed=$((total_passed + 1))
    else
        echo "run_tests: $prog FAILED with exit code $code"
        total_failed=$((total_failed + 1))
    fi
done

for suite in "${suites[@]}"; do
    echo "=== $suite"
    "$suite" 2>&1 | tee "$log"
    code=${PIPESTATUS[0]}
    line=$(grep -E "$summary_re" "$log" | tail -n 1)
    if [[ $line =~ $summary_re ]]; then
        passed=${BASH_REMATCH[1]}
        failed=${BASH_REMATCH[2]}
        if [[ $code -ne 0 && $failed -eq 0 ]]; then
            echo "run_tests: $suite reported no failures but exited with code $code"
            failed=1
        fi
    else
        passed=0
        failed=1
        echo "run_tests: $suite exited with code $code without printing its summary line"
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
done

echo "$total_passed passed, $total_failed failed"
[[ $total_failed -eq 0 ]]
