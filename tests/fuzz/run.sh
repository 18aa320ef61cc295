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
"$out/http_parser_fuzz" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 \
  -print_final_stats=1 "$out/corpus"
