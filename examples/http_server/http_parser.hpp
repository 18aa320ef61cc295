// A bounded, strict HTTP/1.1 request parser (RFC 9112) for the example
// server. It reads from a buffer the server owns and writes only into the
// request it fills (parse_into reuses one); it never reads past the buffer,
// and every count it keeps is bounded by the limits below.
//
// Strict means: what a lenient parser would guess at is refused with 400 —
// bare LF line ends, whitespace before a header's colon, folded header lines,
// a missing Host in HTTP/1.1, conflicting or malformed Content-Length. Those
// ambiguities are how requests get smuggled past a proxy that reads them
// differently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace http {

struct limits {
  std::size_t max_header_bytes = 8 * 1024;  // request line + headers (Go's default is 1 MiB)
  std::size_t max_headers = 100;
  std::size_t max_body_bytes = 1024 * 1024;
};

struct request {
  std::string method;
  std::string target;
  int minor_version = 1;  // HTTP/1.<minor>
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = true;
  // The client sent "Expect: 100-continue" in HTTP/1.1 with a body, and waits
  // for "100 Continue" before sending that body. Set as soon as the headers
  // are whole and acceptable, also while parse_into still says incomplete;
  // an HTTP/1.0 request's expectation is ignored, as RFC 9110 §10.1.1 says.
  bool expect_continue = false;

  // The first header named `name` (case-insensitive), or null.
  const std::string* header(std::string_view name) const;
};

// What parse() found at the start of the buffer.
enum class parse_status {
  complete,               // a whole request: `consumed` bytes of it
  incomplete,             // a prefix of one: read more
  bad_request,            // 400
  header_too_large,       // 431
  body_too_large,         // 413
  not_implemented,        // 501: a method or transfer coding this server does not do
  version_not_supported,  // 505
};

// The status code to answer a failed parse with.
int status_code(parse_status s);

struct parse_result {
  parse_status status = parse_status::incomplete;
  std::size_t consumed = 0;
  request req;
};

parse_result parse(std::string_view buf, const limits& lim = {});

// The same, into a request the caller keeps from one request to the next: its
// strings and header list keep their memory, so a keep-alive connection
// parses without allocating. `consumed` is set for a complete request.
parse_status parse_into(std::string_view buf, const limits& lim, request& req,
                        std::size_t& consumed);

// ---- Implementation ---------------------------------------------------------

namespace detail {

inline bool is_tchar(char c) {
  // RFC 9110 token characters.
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != '\0' && std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

inline bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Field values: visible characters, spaces and tabs, and obs-text; no
// control characters (a NUL or a bare CR inside a value is refused).
inline bool is_field_value(std::string_view v) {
  for (unsigned char c : v) {
    if (c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f)) continue;
    return false;
  }
  return true;
}

inline std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Whether a comma-separated header value lists `token`.
inline bool lists_token(std::string_view v, std::string_view token) {
  while (!v.empty()) {
    std::size_t comma = v.find(',');
    std::string_view item = trim_ows(v.substr(0, comma));
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return false;
}

inline bool known_method(std::string_view m) {
  for (std::string_view k : {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
    if (m == k) return true;
  return false;
}

}  // namespace detail

inline const std::string* request::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (detail::iequals(k, name)) return &v;
  return nullptr;
}

inline int status_code(parse_status s) {
  switch (s) {
    case parse_status::complete:
    case parse_status::incomplete:
      return 200;
    case parse_status::bad_request:
      return 400;
    case parse_status::header_too_large:
      return 431;
    case parse_status::body_too_large:
      return 413;
    case parse_status::not_implemented:
      return 501;
    case parse_status::version_not_supported:
      return 505;
  }
  return 400;
}

inline parse_result parse(std::string_view buf, const limits& lim) {
  parse_result r;
  r.status = parse_into(buf, lim, r.req, r.consumed);
  return r;
}

inline parse_status parse_into(std::string_view buf, const limits& lim, request& req,
                               std::size_t& consumed) {
  consumed = 0;
  req.headers.clear();
  req.expect_continue = false;
  // RFC 9112 §2.2: a server should ignore empty lines before a request line.
  std::size_t start = 0;
  while (start + 1 < buf.size() && buf[start] == '\r' && buf[start + 1] == '\n') start += 2;
  if (start > 8) return parse_status::bad_request;  // not a stray CRLF or two

  std::size_t end = buf.find("\r\n\r\n", start);
  std::size_t head_len = end == std::string_view::npos ? buf.size() - start : end + 4 - start;
  if (head_len > lim.max_header_bytes) return parse_status::header_too_large;
  if (end == std::string_view::npos) {
    // A bare LF where a line must end is refused now, not after 8 KiB.
    if (buf.substr(start).find('\n') != std::string_view::npos) {
      std::string_view head = buf.substr(start);
      for (std::size_t i = 0; i < head.size(); ++i)
        if (head[i] == '\n' && (i == 0 || head[i - 1] != '\r'))
          return parse_status::bad_request;
    }
    return parse_status::incomplete;
  }
  std::string_view head = buf.substr(start, end + 2 - start);  // every line with its CRLF

  // Each line ends in CRLF; a CR or LF anywhere else is refused.
  auto next_line = [&](std::string_view& rest, std::string_view& line) {
    std::size_t crlf = rest.find("\r\n");
    line = rest.substr(0, crlf);
    rest.remove_prefix(crlf + 2);
    return line.find_first_of("\r\n") == std::string_view::npos;
  };

  std::string_view rest = head, line;
  if (!next_line(rest, line)) return parse_status::bad_request;

  // request-line = method SP request-target SP HTTP-version
  std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return parse_status::bad_request;
  std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return parse_status::bad_request;
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!detail::is_token(method)) return parse_status::bad_request;
  if (target.empty()) return parse_status::bad_request;
  for (unsigned char c : target)
    if (c <= 0x20 || c == 0x7f) return parse_status::bad_request;
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
    return parse_status::bad_request;
  if (version[5] != '1') return parse_status::version_not_supported;
  req.minor_version = version[7] - '0';
  if (target != "*" && target.front() != '/') return parse_status::bad_request;
  if (target == "*" && method != "OPTIONS") return parse_status::bad_request;

  bool have_length = false;
  std::uint64_t length = 0;
  bool have_host = false;
  bool chunked_or_other_coding = false;
  std::string_view connection;
  std::string_view expect;
  while (!rest.empty()) {
    if (!next_line(rest, line)) return parse_status::bad_request;
    if (line.front() == ' ' || line.front() == '\t')
      return parse_status::bad_request;  // obs-fold
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return parse_status::bad_request;
    std::string_view name = line.substr(0, colon);
    if (!detail::is_token(name)) return parse_status::bad_request;  // also: space before ':'
    std::string_view value = detail::trim_ows(line.substr(colon + 1));
    if (!detail::is_field_value(value)) return parse_status::bad_request;
    if (req.headers.size() == lim.max_headers) return parse_status::header_too_large;

    if (detail::iequals(name, "content-length")) {
      if (value.empty() || value.size() > 18) return parse_status::bad_request;
      std::uint64_t v = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return parse_status::bad_request;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
      }
      if (have_length && v != length) return parse_status::bad_request;
      have_length = true;
      length = v;
    } else if (detail::iequals(name, "transfer-encoding")) {
      chunked_or_other_coding = true;
    } else if (detail::iequals(name, "host")) {
      if (have_host) return parse_status::bad_request;
      have_host = true;
    } else if (detail::iequals(name, "connection")) {
      connection = value;
    } else if (detail::iequals(name, "expect")) {
      expect = value;
    }
    req.headers.emplace_back(name, value);
  }
  if (req.minor_version >= 1 && !have_host) return parse_status::bad_request;
  if (chunked_or_other_coding) {
    // Both at once is the classic smuggling vector: refuse it outright.
    if (have_length) return parse_status::bad_request;
    return parse_status::not_implemented;
  }
  if (!detail::known_method(method)) return parse_status::not_implemented;
  if (length > lim.max_body_bytes) return parse_status::body_too_large;
  req.expect_continue =
      req.minor_version >= 1 && length > 0 && detail::lists_token(expect, "100-continue");

  std::size_t body_at = end + 4;
  if (buf.size() - body_at < length) return parse_status::incomplete;
  req.method.assign(method);
  req.target.assign(target);
  req.body.assign(buf.substr(body_at, length));
  if (req.minor_version == 0) {
    req.keep_alive = detail::lists_token(connection, "keep-alive");
  } else {
    req.keep_alive = !detail::lists_token(connection, "close");
  }
  consumed = body_at + length;
  return parse_status::complete;
}

}  // namespace http
