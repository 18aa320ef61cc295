#!/usr/bin/env bash
# Builds and runs the consumer in tests/package three ways: against an
# installed gofer (find_package), with add_subdirectory, and with FetchContent
# from the local source tree. No network is used.
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cmake -S "$src" -B "$work/gofer" -G Ninja -DGOFER_BUILD_TESTS=OFF \
  -DGOFER_BUILD_BENCHMARKS=OFF -DGOFER_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --install "$work/gofer" >/dev/null
for f in goferConfig.cmake goferConfigVersion.cmake goferTargets.cmake; do
  test -f "$work/prefix/lib/cmake/gofer/$f" || { echo "package: $f not installed" >&2; exit 1; }
done

for mode in find_package add_subdirectory fetch_content; do
  echo "package: $mode"
  cmake -S "$src/tests/package" -B "$work/$mode" -G Ninja -DGOFER_CONSUME=$mode \
    -DGOFER_SOURCE_DIR="$src" -DCMAKE_PREFIX_PATH="$work/prefix" --no-warn-unused-cli \
    -DFETCHCONTENT_FULLY_DISCONNECTED=ON >/dev/null
  cmake --build "$work/$mode" >/dev/null
  "$work/$mode/consumer"
done
echo "package: 3 passed, 0 failed"
