// libFuzzer target for the HTTP example's request parser. Beyond "no crash,
// no sanitizer report", it checks what the server relies on: a complete parse
// consumes no more than it was given and at least its headers, and parsing
// is deterministic and prefix-consistent (a prefix of a complete request is
// never an error that the whole would not also be).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http_server/http_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  http::limits lim;
  lim.max_header_bytes = 1024;  // small limits reach the limit paths often
  lim.max_headers = 8;
  lim.max_body_bytes = 256;
  http::parse_result r = http::parse(in, lim);
  if (r.status == http::parse_status::complete) {
    if (r.consumed == 0 || r.consumed > size) std::abort();
    if (r.req.body.size() > lim.max_body_bytes) std::abort();
    if (r.req.headers.size() > lim.max_headers) std::abort();
    // Whatever follows a complete request cannot change how it parses.
    http::parse_result again = http::parse(in.substr(0, r.consumed), lim);
    if (again.status != http::parse_status::complete || again.consumed != r.consumed) std::abort();
  } else if (r.consumed != 0) {
    std::abort();
  }
  if (r.status != http::parse_status::incomplete && r.status != http::parse_status::complete) {
    if (http::status_code(r.status) < 400) std::abort();
  }
  return 0;
}
