// A bank, written as threaded C++ is: accounts each behind a mutex, a
// transfer locking both accounts with std::scoped_lock (which avoids
// deadlock by std::lock's try-and-back-off, over gofer::mutex's try_lock),
// orders handed from clerks to tellers through a bounded queue built on a
// mutex and two condition variables, and an auditor that waits on a
// condition variable until every order is done. Money is conserved and no
// order is lost or done twice.
#include <gofer/gofer.hpp>

#include <array>
#include <cstdio>
#include <deque>
#include <mutex>

namespace {

struct account {
  gofer::mutex mu;
  long balance = 1000;  // guarded by mu
};

struct order {
  int from, to;
  long amount;
};

// A bounded queue: push waits while full, pop while empty; close wakes all.
class order_queue {
 public:
  void push(order o) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return q_.size() < 8; });
    q_.push_back(o);
    not_empty_.notify_one();
  }
  std::optional<order> pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return std::nullopt;
    order o = q_.front();
    q_.pop_front();
    not_full_.notify_one();
    return o;
  }
  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  gofer::mutex mu_;
  gofer::cond_var not_full_, not_empty_;
  std::deque<order> q_;  // guarded by mu_
  bool closed_ = false;  // guarded by mu_
};

}  // namespace

int main() {
  return gofer::run([] {
    constexpr int clerks = 10, orders_each = 200, tellers = 16;
    std::array<account, 10> accounts;
    order_queue queue;

    gofer::mutex audit_mu;
    gofer::cond_var audit_cv;
    int pending = clerks * orders_each;  // guarded by audit_mu
    long done = 0, declined = 0;         // guarded by audit_mu

    for (int c = 0; c < clerks; ++c) {
      gofer::go([&queue, c] {
        unsigned s = static_cast<unsigned>(c) + 1;
        for (int i = 0; i < orders_each; ++i) {
          s = s * 1103515245u + 12345u;
          int from = static_cast<int>((s >> 8) % 10);
          int to = static_cast<int>((s >> 16) % 10);
          if (to == from) to = (to + 1) % 10;
          queue.push({from, to, static_cast<long>((s >> 20) % 300)});
        }
      });
    }
    gofer::wait_group telling;
    telling.add(tellers);
    for (int t = 0; t < tellers; ++t) {
      gofer::go([&] {
        DEFER(telling.done());
        while (auto o = queue.pop()) {
          bool ok;
          {
            std::scoped_lock both(accounts[o->from].mu, accounts[o->to].mu);
            ok = accounts[o->from].balance >= o->amount;
            if (ok) {
              accounts[o->from].balance -= o->amount;
              gofer::this_fiber::yield();  // a slow ledger: others queue on these locks
              accounts[o->to].balance += o->amount;
            }
          }
          std::lock_guard lock(audit_mu);
          ++(ok ? done : declined);
          if (--pending == 0) audit_cv.notify_all();
        }
      });
    }

    {
      std::unique_lock lock(audit_mu);
      audit_cv.wait(lock, [&] { return pending == 0; });
      // How many are declined depends on the order they ran in; the first
      // always succeeds, as every account starts with more than any order.
      std::printf("orders handled: %ld, %s\n", done + declined, done > 0 ? "some done" : "NONE done");
    }
    queue.close();
    telling.wait();
    long total = 0;
    for (auto& a : accounts) {
      std::lock_guard lock(a.mu);
      total += a.balance;
    }
    std::printf("total money: %ld\n", total);
  });
}
