#!/usr/bin/env bash
# Tapes and tools/tape_diff, end to end (run by `make test` after the builds):
#   - exercise 03's wrong version (softmax over dim 2) against its solution:
#     tape_diff names the softmax, op 1, and exits 1;
#   - the solution against itself: the tapes agree, exit 0;
#   - chapter 03's model (tests/programs/point_attention_step) in fast and in
#     reference mode: the ops they share agree;
#   - the same step in PyTorch (tools/torch_tape.py, with /usr/bin/python3):
#     all six ops agree; with the softmax over dim 2, tape_diff names it; and
#     the chapters' saved models load into their PyTorch twins (strict).
#     Skipped, with a message, when /usr/bin/python3 has no torch.
# Ends with "tapes: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${AG_BUILD:-build/release}
step=$build/run/tests/programs/point_attention_step
python=${AG_PYTHON:-/usr/bin/python3}  # Debian's, where python3-torch installs torch
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect NAME EXPECTED_CODE OUTPUT CODE FRAGMENT...
expect() {
    local name=$1 expected=$2 output=$3 code=$4
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

echo "two attograd runs, one op changed: exercise 03's wrong version and its solution"
AG_TAPE=$tmp/wrong.safetensors "$build/tests/exercises/03_point_attention_wrong" >/dev/null 2>&1
AG_TAPE=$tmp/right.safetensors "$build/tutorials/exercises/solutions/03_point_attention" >/dev/null 2>&1
AG_TAPE=$tmp/right2.safetensors "$build/tutorials/exercises/solutions/03_point_attention" >/dev/null 2>&1
output=$("$build/tools/tape_diff" "$tmp/wrong.safetensors" "$tmp/right.safetensors" 2>&1)
expect "tape_diff names the changed op" 1 "$output" $? \
    "(softmax), its output (forward):" "a: forward  #" "b: forward  #"
output=$("$build/tools/tape_diff" "$tmp/right.safetensors" "$tmp/right2.safetensors" 2>&1)
expect "the same run twice agrees" 0 "$output" $? "the tapes agree:"

echo "chapter 03's model, one training step, fast and reference mode"
"$step" "$tmp/state.safetensors" "$tmp/fast.safetensors" >/dev/null
AG_REFERENCE=1 "$step" "$tmp/state_reference.safetensors" "$tmp/reference.safetensors" >/dev/null
output=$("$build/tools/tape_diff" "$tmp/fast.safetensors" "$tmp/reference.safetensors" 2>&1)
expect "fast and reference mode agree on the ops they share" 0 "$output" $? \
    "the tapes ran different ops" "the tapes agree"

if ! "$python" -c "import torch" >/dev/null 2>&1; then
    echo "  the PyTorch checks: skipped ($python cannot import torch; on Debian: apt-get install python3-torch)"
else
    echo "the same step in PyTorch ($("$python" -c 'import torch; print(torch.__version__)'))"
    "$python" tools/torch_tape.py "$tmp/state.safetensors" "$tmp/torch.safetensors" >/dev/null
    output=$("$build/tools/tape_diff" "$tmp/fast.safetensors" "$tmp/torch.safetensors" 2>&1)
    expect "attograd and PyTorch agree op by op" 0 "$output" $? "(pytorch, torch " \
        "the tapes agree: 4 ops paired"
    "$python" tools/torch_tape.py "$tmp/state.safetensors" "$tmp/torch_changed.safetensors" \
        --softmax-dim 2 >/dev/null
    output=$("$build/tools/tape_diff" "$tmp/fast.safetensors" "$tmp/torch_changed.safetensors" 2>&1)
    expect "a changed op in PyTorch is named" 1 "$output" $? \
        "the first difference: op 1 (softmax), its output (forward):"
    # The chapters' trained models, as docs/pytorch.md loads them.
    if ls build/tutorials/0[2-6]_model.safetensors >/dev/null 2>&1; then
        output=$("$python" tests/programs/load_chapter_models.py 2>&1)
        expect "the chapters' saved models load in PyTorch" 0 "$output" $? "loaded:"
    else
        echo "  the chapters' saved models load in PyTorch: skipped (no build/tutorials/NN_model.safetensors: run make tutorials)"
    fi
fi

echo "tapes: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
