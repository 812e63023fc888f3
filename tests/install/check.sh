#!/usr/bin/env bash
# Installs the keymesh of BUILD_DIR to a temporary prefix, builds an
# application outside the tree against it with find_package(keymesh), and
# runs it. Fails on any step.
#
# usage: tests/install/check.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: check.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/keymesh-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
test -f "$work/prefix/lib/cmake/keymesh/keymeshConfig.cmake"
test -f "$work/prefix/include/keymesh/actors/interfaces.hpp"
test -x "$work/prefix/bin/keymesh"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$repo/tests/install" -B "$work/app" "${generator[@]}" "${launcher[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DEXAMPLE_SOURCE="$repo/examples/sessions_without_http.cpp" >"$work/configure.log"
cmake --build "$work/app" -j"${JOBS:-2}" >"$work/build.log" || {
  tail -40 "$work/build.log" >&2
  exit 1
}
"$work/app/consumer"
echo "install check: built and ran an application against $work/prefix"
