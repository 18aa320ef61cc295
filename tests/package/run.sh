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

# Installing needs no build: the library is its headers. Configured as the
# README says, with gofer the top-level project and its options left alone,
# on a machine without Catch2 or Google Benchmark (hidden here): its tests and
# benchmarks are then skipped, with a message, rather than failing the
# configure.
hide=(-DCMAKE_DISABLE_FIND_PACKAGE_Catch2=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON)
echo "package: install without Catch2 or Google Benchmark"
quiet cmake -S "$src" -B "$work/gofer" -G Ninja -DCMAKE_INSTALL_PREFIX="$work/prefix" \
  "${hide[@]}" "$@"
for kind in TESTS BENCHMARKS; do
  grep -q "GOFER_BUILD_$kind is off" "$work/step.log" ||
    { cat "$work/step.log" >&2; echo "package: no message that $kind are skipped" >&2; exit 1; }
done
quiet cmake --install "$work/gofer"
test -f "$work/prefix/include/gofer/gofer.hpp" || { echo "package: headers not installed" >&2; exit 1; }
for f in goferConfig.cmake goferConfigVersion.cmake goferTargets.cmake; do
  if [[ -z "$(find "$work/prefix" -name "$f" -print -quit)" ]]; then
    echo "package: $f not installed" >&2
    exit 1
  fi
done

# Asked for, the tests are an error without Catch2, one that says what to do.
if cmake -S "$src" -B "$work/asked" -G Ninja -DGOFER_BUILD_TESTS=ON "${hide[@]}" "$@" \
  >"$work/step.log" 2>&1; then
  echo "package: -DGOFER_BUILD_TESTS=ON without Catch2 configured" >&2
  exit 1
fi
grep -q "GOFER_BUILD_TESTS=OFF" "$work/step.log" ||
  { cat "$work/step.log" >&2; echo "package: the error does not say how to go on" >&2; exit 1; }

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
