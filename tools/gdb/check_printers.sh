#!/usr/bin/env bash
# The debugger tests, run by `make test` when gdb is installed:
#   1. the pretty-printers' test (check_printers.py) on chapter 03's debug build;
#   2. each chapter recipe of docs/debugging.md (check_recipes.py) on chapters
#      03-07's debug builds, started as `make debug-NN` starts them.
# The build directory is added to gdb's auto-load safe path for these runs
# only, so the printers load the way they do for a user (from the binary's
# -gdb.py). Exits 1 when any check fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
status=0
run_gdb() {  # run_gdb SCRIPT BINARY: one batch gdb run, its failure noted
    local script=$1 binary=$2
    if [[ ! -x $binary || ! -f $binary-gdb.py ]]; then
        echo "check_printers: $binary (or its -gdb.py) is not built (make MODE=debug $binary)" >&2
        status=1
        return
    fi
    gdb -q -nx -batch -iex "add-auto-load-safe-path $PWD/build" -x "$script" "$binary" </dev/null \
        || status=1
}

run_gdb tools/gdb/check_printers.py build/debug/tutorials/03_point_attention
for chapter in 03 04 05 06 07; do
    binary=$(ls build/debug/tutorials/${chapter}_* 2>/dev/null | grep -m 1 -v -- '-gdb.py$')
    AG_RECIPE=$chapter run_gdb tools/gdb/check_recipes.py "${binary:-build/debug/tutorials/${chapter}_?}"
done
exit $status
