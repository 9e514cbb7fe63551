#!/usr/bin/env bash
# An ag::Error that nothing catches, in a learner's one-file program built and
# run with `make run` (tests/programs/uncaught_error.cpp: a matmul of (2,3) by
# (2,3) on line 12). What the program prints last must name that line in the
# debug build (file:line), and at least the function in the build of MODE (for
# `make test`, the build AG_BUILD names; release by default), besides the
# message and the op. Ends with "uncaught: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${AG_BUILD:-build/release}
mode=$(basename "$build")
mode=${mode%-double}
passed=0
failed=0
program=tests/programs/uncaught_error.cpp
line=$(grep -n 'matmul(a, b)' "$program" | cut -d: -f1)

# expect NAME MODE FRAGMENT...: `make run` in MODE fails (the program aborts) and prints each fragment.
expect() {
    local name=$1 run_mode=$2
    shift 2
    # A make of its own: not the jobserver of the `make test` that runs this script.
    local output code problem=
    output=$(MAKEFLAGS= MAKELEVEL= make --no-print-directory run FILE=$program MODE="$run_mode" 2>&1)
    code=$?
    [[ $code -ne 0 ]] || problem="make run succeeded"
    for fragment in "$@"; do
        [[ -n $problem ]] && break
        grep -qF -- "$fragment" <<<"$output" || problem="no \"$fragment\" in its output"
    done
    if [[ -z $problem ]]; then
        echo "  $name: passed"
        grep -A2 "what():" <<<"$output" | sed 's/^/    | /'
        passed=$((passed + 1))
    else
        echo "  $name: FAILED: $problem; its output:"
        sed 's/^/    | /' <<<"$output"
        failed=$((failed + 1))
    fi
}

echo "make run FILE=$program, an uncaught ag::Error on line $line"
expect "MODE=debug names the file and line" debug \
    "terminate called after throwing an instance of 'ag::Error'" \
    "what():  matmul: cannot multiply (2,3) by (2,3): inner sizes 3 and 2 differ" \
    "where:   $program:$line in main, calling ag::matmul (raised at autograd/ops_matmul.cpp:" \
    "catch throw"
if [[ $mode != debug ]]; then
    expect "MODE=$mode names at least the function" "$mode" \
        "what():  matmul: cannot multiply (2,3) by (2,3)" "main, calling ag::matmul (raised at"
fi

echo "uncaught: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
