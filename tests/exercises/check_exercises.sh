#!/usr/bin/env bash
# The exercises' three promises, for each tutorials/exercises/NN_name.cpp
# (run by `make test`, after `make build-workbench`):
#   stub      the file as shipped, its steps still TODO(): the checker fails
#             with "verdict: NOT DONE" naming the file:line of the first
#             TODO(), and exits 1 (no crash);
#   solution  tutorials/exercises/solutions/NN_name.cpp passes: exit 0, "verdict: PASS";
#   wrong     tests/exercises/NN_name_wrong.cpp fails, and the first tensor the
#             checker names is the one its line "// the checker must name: X" says.
# A learner who has edited their NN_name.cpp has no stub left to check: that
# case is skipped, with a message. Ends with "exercises: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${AG_BUILD:-build/release}
passed=0
failed=0

# check NAME OUTPUT EXIT_CODE EXPECTED_CODE FRAGMENT...
check() {
    local name=$1 output=$2 code=$3 expected=$4
    shift 4
    local problem=
    [[ $code -eq $expected ]] || problem="exit code $code, expected $expected"
    for fragment in "$@"; do
        [[ -n $problem ]] && break
        grep -qF -- "$fragment" <<<"$output" || problem="no \"$fragment\" in its output"
    done
    if [[ -z $problem ]]; then
        echo "  $name: passed"
        passed=$((passed + 1))
    else
        echo "  $name: FAILED: $problem; its output:"
        sed 's/^/    | /' <<<"$output"
        failed=$((failed + 1))
    fi
}

shopt -s nullglob
for learner in tutorials/exercises/[0-9][0-9]_*.cpp; do
    name=$(basename "$learner" .cpp)
    number=${name%%_*}
    echo "exercise $name"

    if git diff --quiet HEAD -- "$learner" 2>/dev/null || { ! git rev-parse 2>/dev/null && grep -q '= TODO();' "$learner"; }; then
        first_todo=$(grep -m 1 -n '= TODO();' "$learner" | cut -d: -f1)
        output=$("$build/tutorials/exercises/$name" 2>&1)
        check "stub fails clearly" "$output" $? 1 "verdict: NOT DONE. Your function stops at $learner:$first_todo,"
    else
        echo "  stub fails clearly: skipped ($learner has been edited; git stash it to test the stub)"
    fi

    output=$("$build/tutorials/exercises/solutions/$name" 2>&1)
    check "solution passes" "$output" $? 0 "verdict: PASS"

    wrong=tests/exercises/${name}_wrong.cpp
    expected=$(sed -n 's|^// the checker must name: *||p' "$wrong")
    if [[ -z $expected ]]; then
        echo "  wrong version pinpointed: FAILED: $wrong has no line \"// the checker must name: X\""
        failed=$((failed + 1))
        continue
    fi
    output=$("$build/tests/exercises/${name}_wrong" 2>&1)
    check "wrong version pinpointed to $expected" "$output" $? 1 \
        "verdict: FAIL. The first tensor that differs is $expected " "hint: $expected is"
done

echo "exercises: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
