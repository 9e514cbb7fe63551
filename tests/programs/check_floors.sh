#!/usr/bin/env bash
# The floors (core/ < autograd/ < layers/), each using only the ones below it:
#   - tests/programs/core_only.cpp links against libattograd_core.a alone
#     (every object of it, plus fmt, libbacktrace, dl and pthread) and prints
#     the values its comments compute;
#   - tests/programs/autograd_only.cpp links against libattograd_autograd.a and
#     libattograd_core.a alone and prints its values and gradients;
#   - no file of core/ includes a header of autograd/ or layers/, and no file
#     of autograd/ one of layers/;
#   - every file docs/architecture.md's reading path names exists, with about
#     the number of lines it gives.
# The programs are linked here, by `make` (the rule is in the Makefile), so
# that a failing link is a failed check. Built in the mode AG_BUILD names
# (release by default), float flavor. Ends with "floors: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${AG_BUILD:-build/release}
mode=$(basename "$build")
mode=${mode%-double}
build=build/$mode
passed=0
failed=0

pass() {
    echo "  $1: passed"
    passed=$((passed + 1))
}
fail() {
    echo "  $1: FAILED: $2"
    sed 's/^/    | /' <<<"$3"
    failed=$((failed + 1))
}

# expect_program NAME PROGRAM EXPECTED: `make` links PROGRAM, which runs and prints EXPECTED.
expect_program() {
    local name=$1 program=$2 expected=$3 output code
    # A make of its own: not the jobserver of the `make test` that runs this script.
    output=$(MAKEFLAGS= MAKELEVEL= make --no-print-directory MODE="$mode" FLAVOR=float \
             "$program" 2>&1)
    if [[ $? -ne 0 ]]; then
        fail "$name" "make $program failed" "$output"
        return
    fi
    output=$("$program" 2>&1)
    code=$?
    if [[ $code -ne 0 ]]; then
        fail "$name" "$program exited with code $code" "$output"
    elif [[ $output != "$expected" ]]; then
        fail "$name" "it printed, instead of the expected values:" "$output"
    else
        pass "$name"
    fi
}

echo "a program of core/ alone, linked against libattograd_core.a"
expect_program "core/ links and runs without autograd/ and layers/" \
    "$build/tests/programs/core_only" "\
tensor([[16., 22.],
        [34., 49.]])
sum 121
tensor([1., 1.], name='w', requires_grad=True)"

echo "a program of autograd/, linked against libattograd_autograd.a and libattograd_core.a"
expect_program "autograd/ links and runs without layers/" \
    "$build/tests/programs/autograd_only" "\
tensor([[-1.],
        [-1.]], grad_fn=<MatmulBackward>)
tensor(2., grad_fn=<SumBackward>)
tensor([[-2.,  2.],
        [-2.,  2.]])
tensor([[ -8.],
        [-12.]])"

echo "#include lines: a floor includes only the floors below it"
# expect_no_include NAME DIR FLOOR...: no file of DIR includes a header of FLOOR.
expect_no_include() {
    local name=$1 dir=$2 found
    shift 2
    local floors
    floors=$(IFS='|'; echo "$*")
    found=$(grep -rnE --include='*.cpp' --include='*.hpp' \
            "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]($floors)/" "$dir")
    if [[ -z $found ]]; then pass "$name"; else fail "$name" "found:" "$found"; fi
}
expect_no_include "core/ includes nothing of autograd/ or layers/" core autograd layers
expect_no_include "autograd/ includes nothing of layers/" autograd layers

echo "docs/architecture.md's reading path: the files it names, their sizes"
# Each table row | n | `file` | lines | ...: the file exists, and has the number
# of lines given, give or take a quarter (the plan stays one that holds).
reading_path=$(grep -E '^\| [0-9]+ \| `[^`]+` \| [0-9]+ \|' docs/architecture.md)
if [[ -z $reading_path ]]; then
    fail "the reading path names files" "no table rows found" ""
else
    problems=""
    while IFS='|' read -r _ _ file lines _; do
        file=${file//[ \`]/}
        lines=${lines// /}
        if [[ ! -f $file ]]; then
            problems+="$file: no such file"$'\n'
        else
            actual=$(wc -l <"$file")
            if ((4 * actual < 3 * lines || 4 * actual > 5 * lines)); then
                problems+="$file: $actual lines, the path says $lines"$'\n'
            fi
        fi
    done <<<"$reading_path"
    if [[ -z $problems ]]; then
        pass "every file of the reading path exists, at about the length given"
    else
        fail "every file of the reading path exists, at about the length given" "" "$problems"
    fi
fi

echo "floors: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
