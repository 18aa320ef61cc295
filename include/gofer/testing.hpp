// Helpers for testing code that starts fibers, independent of any test
// framework.
//
// leak_check (in the spirit of Go's goleak): fibers started inside a scope
// must be gone by its end. A fiber forgotten on a channel nobody will ever
// send to is the fiber world's memory leak; this makes it a test failure.
//
//   {
//     gofer::testing::leak_check leaks;
//     code_under_test();
//     REQUIRE(leaks.verify());  // or let the destructor report and abort
//   }
//
// verify() waits, up to the grace period, for the new fibers to finish (a
// fiber that is about to exit is not a leak), then returns false if any is
// still alive; report() then holds their dump (id, name, what each waits on,
// where it was created). A leak_check whose verify() was never called checks
// in its destructor, and on a leak prints the report and aborts: a leak is
// never silently ignored.
//
// "New" means alive now and not alive when the check began, in any runtime of
// the process; fibers of unrelated concurrent work count too, so run the
// check where the code under test is the only thing starting fibers.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "gofer/detail/diag/fiber_dump.hpp"
#include "gofer/detail/util/source_location.hpp"
#include "gofer/this_fiber.hpp"

namespace gofer::testing {

class leak_check {
 public:
  explicit leak_check(std::chrono::milliseconds grace = std::chrono::seconds(1),
                      detail::source_location where = detail::source_location::current())
      : grace_(grace), where_(where) {
    for (const auto& s : live()) before_.insert(s.id);
    // The fiber running the check is not one it could find leaked.
    before_.insert(this_fiber::id());
  }
  leak_check(const leak_check&) = delete;
  leak_check& operator=(const leak_check&) = delete;

  ~leak_check() {
    if (verified_) return;
    if (!verify()) {
      std::fputs(report_.c_str(), stderr);
      std::fflush(stderr);
      std::abort();
    }
  }

  // True if every fiber started since the check began has finished (waiting
  // up to the grace period for them).
  bool verify() {
    verified_ = true;
    const auto end = std::chrono::steady_clock::now() + grace_;
    std::vector<detail::fiber_snapshot> left;
    for (std::chrono::microseconds pause(50);;
         pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(20))) {
      left = leaked();
      if (left.empty()) {
        report_.clear();
        return true;
      }
      if (std::chrono::steady_clock::now() >= end) break;
      // Parks the fiber (or sleeps the thread) that runs the check, so the
      // fibers it waits for can run on its P.
      this_fiber::sleep_for(pause);
    }
    std::ostringstream os;
    os << "gofer: " << left.size() << (left.size() == 1 ? " fiber" : " fibers")
       << " leaked by the scope of the leak_check at " << where_.file_name() << ':' << where_.line()
       << ":\n\n";
    for (const auto& s : left) detail::format_fiber(os, s);
    report_ = os.str();
    return false;
  }

  // The dump of the leaked fibers after a failed verify(); empty otherwise.
  const std::string& report() const noexcept { return report_; }

 private:
  static std::vector<detail::fiber_snapshot> live() {
    std::vector<detail::fiber_snapshot> all;
    std::lock_guard lk(detail::runtime_registry_mu);
    for (detail::runtime_impl* rt : detail::runtime_registry) {
      auto v = detail::snapshot_fibers(*rt);
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  }

  std::vector<detail::fiber_snapshot> leaked() const {
    std::vector<detail::fiber_snapshot> out;
    for (auto& s : live())
      if (before_.count(s.id) == 0) out.push_back(std::move(s));
    return out;
  }

  std::chrono::milliseconds grace_;
  detail::source_location where_;
  std::unordered_set<std::uint64_t> before_;
  std::string report_;
  bool verified_ = false;
};

}  // namespace gofer::testing
