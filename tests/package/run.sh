#!/usr/bin/env bash
# Builds and runs the consumer in tests/package three ways, each in a fresh
# temporary directory: against an installed gofer (find_package), with
# add_subdirectory, and with FetchContent from the local source tree. Nothing
# is downloaded. Extra arguments go to every configure step (e.g. a compiler).
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

quiet() {  # the output only matters when a step fails
  local log="$work/step.log"
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "package: failed: $*" >&2
    return 1
  fi
}

# Installing needs no build: the library is its headers. Its own programs are
# off so that installing does not depend on Catch2 or Google Benchmark.
quiet cmake -S "$src" -B "$work/gofer" -G Ninja -DCMAKE_INSTALL_PREFIX="$work/prefix" \
  -DGOFER_BUILD_TESTS=OFF -DGOFER_BUILD_BENCHMARKS=OFF -DGOFER_BUILD_EXAMPLES=OFF "$@"
quiet cmake --install "$work/gofer"
test -f "$work/prefix/include/gofer/gofer.hpp" || { echo "package: headers not installed" >&2; exit 1; }
for f in goferConfig.cmake goferConfigVersion.cmake goferTargets.cmake; do
  if [[ -z "$(find "$work/prefix" -name "$f" -print -quit)" ]]; then
    echo "package: $f not installed" >&2
    exit 1
  fi
done

passed=0
for mode in find_package add_subdirectory fetch_content; do
  echo "package: $mode"
  build="$work/consumer-$mode"
  quiet cmake -S "$src/tests/package" -B "$build" -G Ninja -DGOFER_CONSUME=$mode \
    -DGOFER_SOURCE_DIR="$src" -DCMAKE_PREFIX_PATH="$work/prefix" \
    -DFETCHCONTENT_FULLY_DISCONNECTED=ON --no-warn-unused-cli "$@"
  if [[ $mode == find_package ]]; then
    # A gofer installed elsewhere on the machine must not stand in for this one.
    found="$(sed -n 's/^gofer_DIR:PATH=//p' "$build/CMakeCache.txt")"
    [[ $found == "$work/prefix/"* ]] || { echo "package: found gofer in '$found'" >&2; exit 1; }
  fi
  quiet cmake --build "$build"
  "$build/consumer"
  passed=$((passed + 1))
done
echo "package: $passed passed, 0 failed"
