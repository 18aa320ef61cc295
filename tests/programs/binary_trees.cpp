// A Tour of Go, "Exercise: Equivalent Binary Trees": Walk sends a tree's
// values in order on a channel; Same walks two trees at once and compares.
// tree.New(k) holds k, 2k, ..., 10k in a random shape; here the shape comes
// from a generator seeded by the call, so every run builds the same trees.
// The common solution returns at the first difference and leaves the walkers
// blocked on their next send, as many tour solutions do: they are abandoned
// when main returns. A second Same closes a quit channel instead, so its
// walkers return.
#include <gofer/gofer.hpp>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

namespace {

struct tree {
  std::unique_ptr<tree> left;
  int value;
  std::unique_ptr<tree> right;
};

std::unique_ptr<tree> insert(std::unique_ptr<tree> t, int v) {
  if (!t) return std::make_unique<tree>(tree{nullptr, v, nullptr});
  if (v < t->value) {
    t->left = insert(std::move(t->left), v);
  } else {
    t->right = insert(std::move(t->right), v);
  }
  return t;
}

// tree.New: a random binary search tree holding k, 2k, ..., 10k.
std::unique_ptr<tree> new_tree(int k, unsigned seed) {
  std::vector<int> vals;
  for (int i = 1; i <= 10; ++i) vals.push_back(i * k);
  for (std::size_t i = vals.size() - 1; i > 0; --i) {
    seed = seed * 1103515245u + 12345u;
    std::swap(vals[i], vals[(seed >> 16) % (i + 1)]);
  }
  std::unique_ptr<tree> t;
  for (int v : vals) t = insert(std::move(t), v);
  return t;
}

void walk_rec(const tree* t, const gofer::chan<int>& ch) {
  if (t == nullptr) return;
  walk_rec(t->left.get(), ch);
  ch.send(t->value);
  walk_rec(t->right.get(), ch);
}

// Walk: every value, in order, then close.
void walk(const tree* t, gofer::chan<int> ch) {
  walk_rec(t, ch);
  ch.close();
}

// Same, as most tour solutions write it: returns at the first difference.
bool same(const tree* a, const tree* b) {
  gofer::chan<int> ca, cb;
  gofer::go(walk, a, ca);
  gofer::go(walk, b, cb);
  for (;;) {
    auto va = ca.recv();
    auto vb = cb.recv();
    if (va != vb) return false;
    if (!va) return true;
  }
}

// Walk that gives up when quit is closed.
bool walk_until(const tree* t, const gofer::chan<int>& ch, const gofer::chan<>& quit) {
  if (t == nullptr) return true;
  if (!walk_until(t->left.get(), ch, quit)) return false;
  if (gofer::select(gofer::on_send(ch, t->value), gofer::on_recv(quit)) == 1) return false;
  return walk_until(t->right.get(), ch, quit);
}

bool same_and_tidy(const tree* a, const tree* b, gofer::wait_group& walkers) {
  gofer::chan<int> ca, cb;
  gofer::chan<> quit;
  DEFER(quit.close());
  walkers.add(2);
  for (auto [t, c] : {std::pair{a, ca}, std::pair{b, cb}}) {
    gofer::go([&walkers, t = t, c = c, quit] {  // (clang before 16 cannot capture a binding by name)
      DEFER(walkers.done());
      if (walk_until(t, c, quit)) c.close();
    });
  }
  for (;;) {
    auto va = ca.recv();
    auto vb = cb.recv();
    if (va != vb) return false;
    if (!va) return true;
  }
}

}  // namespace

int main() {
  return gofer::run([] {
    auto t1 = new_tree(1, 1), t1b = new_tree(1, 2), t2 = new_tree(2, 3);
    gofer::chan<int> ch;
    gofer::go(walk, t1.get(), ch);
    for (int v : ch) std::printf("%d ", v);
    std::printf("\n");
    std::printf("Same(New(1), New(1)) = %s\n", same(t1.get(), t1b.get()) ? "true" : "false");
    std::printf("Same(New(1), New(2)) = %s\n", same(t1.get(), t2.get()) ? "true" : "false");
    gofer::wait_group walkers;
    std::printf("with quit: %s, %s\n", same_and_tidy(t1.get(), t1b.get(), walkers) ? "true" : "false",
                same_and_tidy(t1.get(), t2.get(), walkers) ? "true" : "false");
    walkers.wait();
    std::printf("the tidy walkers returned\n");
  });
}
