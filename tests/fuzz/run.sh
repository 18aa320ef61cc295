#!/usr/bin/env bash
# Builds the HTTP request parser's libFuzzer target with clang (ASan+UBSan)
# and runs it for a bounded time: GOFER_FUZZ_SECONDS, 60 by default.
# Starts from the seed corpus in tests/fuzz/http_parser_corpus; new inputs go
# to a scratch directory, so the tree stays clean.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seconds="${GOFER_FUZZ_SECONDS:-60}"
out="${1:-$root/build/fuzz}"
mkdir -p "$out/corpus"
clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -I"$root/examples" "$here/http_parser_fuzz.cpp" -o "$out/http_parser_fuzz"
cp -n "$here"/http_parser_corpus/* "$out/corpus/" 2>/dev/null || true
# libFuzzer reports every new input: that goes to a log, and only its final
# statistics are shown, or its last lines with the crash when it fails.
log="$out/fuzz.log"
echo "fuzz: running the parser for ${seconds}s (log: $log)"
if "$out/http_parser_fuzz" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 \
  -print_final_stats=1 "$out/corpus" >"$log" 2>&1; then
  grep -E '^(Done|stat::)' "$log" || tail -n 15 "$log"
else
  rc=$?
  tail -n 100 "$log"
  exit "$rc"
fi
