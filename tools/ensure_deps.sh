#!/usr/bin/env bash
# Makes sure attograd's system libraries are installed (called by `make deps`,
# and so by `make test`, `make tutorials`, `make bench`).
#   - all present: exits 0 at once, without calling apt.
#   - missing, running as root (CI, containers): installs them with apt-get.
#   - missing, normal user: prints the sudo command to run and exits 1.
set -euo pipefail

PKGS=(libopenblas-dev doctest-dev libfmt-dev)

if command -v dpkg-query >/dev/null 2>&1; then
    # Debian/Ubuntu: ask dpkg which packages are really installed.
    missing=()
    for pkg in "${PKGS[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        [[ $status == *"install ok installed"* ]] || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && exit 0

    if [[ $(id -u) -eq 0 ]]; then
        echo "attograd: installing ${missing[*]}"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    else
        echo "attograd needs: ${missing[*]}. Run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
else
    # Not Debian: we cannot install anything, but we can tell whether the
    # compiler finds the headers.
    cxx=${CXX:-g++}   # left unquoted below: CXX may be "ccache g++"
    missing=()
    for header in cblas.h doctest/doctest.h fmt/format.h; do
        echo "#include <$header>" | $cxx -std=c++20 -fsyntax-only -x c++ - 2>/dev/null \
            || missing+=("$header")
    done
    [[ ${#missing[@]} -eq 0 ]] && exit 0
    echo "attograd: the compiler ($cxx) cannot find: ${missing[*]}" >&2
    echo "Install the development packages of OpenBLAS (cblas.h), doctest and fmt." >&2
    exit 1
fi
