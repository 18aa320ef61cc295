// Fetching pages with an err_group: at most three fetches at a time, and the
// first failure cancels the rest (errgroup with SetLimit, in Go). The fetches
// are simulated with sleeps that give up as soon as the context is cancelled.
#include <gofer/context.hpp>
#include <gofer/gofer.hpp>
#include <gofer/sync/err_group.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct page {
  std::string url;
  std::chrono::milliseconds latency;
  bool fails;
};

// Waits out the page's latency unless ctx is cancelled first; "downloads"
// the page into *body.
std::error_code fetch(const gofer::context& ctx, const page& p, std::size_t* body) {
  std::error_code err;
  gofer::select(gofer::on_recv(ctx.done(), [&] { err = ctx.err(); }),
                gofer::on_timeout(p.latency, [&] {
                  if (p.fails) {
                    err = std::make_error_code(std::errc::connection_refused);
                  } else {
                    *body = p.url.size() * 100;
                  }
                }));
  return err;
}

// Fetches every page; returns the first failure. sizes[i] is page i's size,
// or 0 if it was not fetched.
std::error_code fetch_all(const std::vector<page>& pages, std::vector<std::size_t>& sizes) {
  sizes.assign(pages.size(), 0);
  gofer::err_group g;
  g.set_limit(3);
  for (std::size_t i = 0; i < pages.size(); ++i) {
    // Blocks while three fetches are running.
    g.go([&, i] { return fetch(g.ctx(), pages[i], &sizes[i]); });
  }
  return g.wait();
}

void report(const char* title, const std::vector<page>& pages) {
  std::vector<std::size_t> sizes;
  const auto start = std::chrono::steady_clock::now();
  std::error_code err = fetch_all(pages, sizes);
  const auto took = std::chrono::steady_clock::now() - start;
  std::printf("%s:\n", title);
  for (std::size_t i = 0; i < pages.size(); ++i)
    std::printf("  %-26s %s\n", pages[i].url.c_str(),
                sizes[i] != 0 ? (std::to_string(sizes[i]) + " bytes").c_str() : "not fetched");
  std::printf("  result: %s%s\n", err ? err.message().c_str() : "ok",
              err && took < 500ms ? " (the slow fetches were cancelled, not waited for)" : "");
}

}  // namespace

int main() {
  return gofer::run([] {
    report("all good", {{"https://example.com/a", 30ms, false},
                        {"https://example.com/b", 10ms, false},
                        {"https://example.com/c", 20ms, false},
                        {"https://example.com/d", 10ms, false},
                        {"https://example.com/e", 30ms, false}});
    // The broken page fails after 20 ms; the slow ones would take a second.
    report("one broken", {{"https://example.com/slow1", 1000ms, false},
                          {"https://broken.example/", 20ms, true},
                          {"https://example.com/slow2", 1000ms, false},
                          {"https://example.com/never", 1000ms, false}});
    return 0;
  });
}
