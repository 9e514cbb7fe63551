#!/usr/bin/env bash
# Runs the pretty-printers' test (check_printers.py) on chapter 03's debug
# build; `make test` runs it when gdb is installed. The build directory is
# added to gdb's auto-load safe path for this run only, so the printers load
# the way they do for a user (from the binary's -gdb.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=build/debug/tutorials/03_point_attention
[[ -x $binary ]] || { echo "check_printers: $binary is not built (make MODE=debug $binary)" >&2; exit 1; }
[[ -f $binary-gdb.py ]] || { echo "check_printers: $binary-gdb.py is missing" >&2; exit 1; }
exec gdb -q -nx -batch -iex "add-auto-load-safe-path $PWD/build" \
    -x tools/gdb/check_printers.py "$binary" </dev/null
