// A tree of contexts as a Go server builds one per request: a root, a
// context per request carrying the request's id as a value, and workers
// under each request. Cancelling one request stops its workers and no
// others; a cause says why; context.AfterFunc runs cleanup when a request
// ends; cancelling the root stops everything left. Each worker reports the
// request id it found in its context and why it stopped.
#include <gofer/gofer.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

int main() {
  return gofer::run([] {
    static const gofer::context_key<std::string> request_id("request id");
    auto [root, cancel_root] = gofer::with_cancel(gofer::context::background());
    gofer::chan<std::string> reports(16);
    gofer::chan<std::string> cleanups(4);
    gofer::wait_group started, workers;

    std::vector<gofer::cancel_cause_func> cancel_request;
    for (int r = 1; r <= 3; ++r) {
      auto [req, cancel] = gofer::with_cancel_cause(gofer::with_value(root, request_id, "req-" + std::to_string(r)));
      cancel_request.push_back(cancel);
      gofer::after_func(req, [cleanups, r] { cleanups.send("cleanup after req-" + std::to_string(r)); });
      for (int w = 1; w <= 3; ++w) {
        auto [ctx, cancel_worker] = gofer::with_cancel(req);
        started.add(1);
        workers.add(1);
        gofer::go([&started, &workers, reports, ctx = ctx, cancel_worker = cancel_worker, w] {
          DEFER(workers.done());
          DEFER(cancel_worker());  // as Go's `defer cancel()`
          started.done();
          ctx.done().recv();
          std::error_code why = gofer::cause(ctx);
          reports.send(*ctx.value(request_id) + " worker " + std::to_string(w) + ": " + ctx.err().message() +
                       (why != ctx.err() ? " (cause: " + why.message() + ")" : ""));
        });
      }
    }
    started.wait();

    cancel_request[1](std::make_error_code(std::errc::connection_reset));  // the client of req-2 went away
    std::vector<std::string> lines;
    for (int i = 0; i < 3; ++i) lines.push_back(*reports.recv());
    lines.push_back(*cleanups.recv());
    std::sort(lines.begin(), lines.end());
    for (const auto& l : lines) std::printf("%s\n", l.c_str());
    std::printf("req-1 and req-3 still running: %s\n", reports.size() == 0 && !root.err() ? "yes" : "NO");

    cancel_root();
    workers.wait();
    lines.clear();
    for (int i = 0; i < 6; ++i) lines.push_back(*reports.recv());
    for (int i = 0; i < 2; ++i) lines.push_back(*cleanups.recv());
    std::sort(lines.begin(), lines.end());
    for (const auto& l : lines) std::printf("%s\n", l.c_str());
    for (auto& c : cancel_request) c({});  // as `defer cancel()` would, after the fact: no effect
  });
}
