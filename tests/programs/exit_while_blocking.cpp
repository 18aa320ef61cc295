// main returns while fibers wait for gofer::blocking calls still in progress
// on helper threads: a read from a pipe nobody writes to, and a plain sleep
// of an hour. Go ends a program whose goroutines sit in system calls; so does
// gofer, without waiting for the calls.
#include <gofer/gofer.hpp>

#include "parked.hpp"

#include <unistd.h>

#include <cstdio>

int main() {
  return gofer::run([] {
    int fds[2];
    if (::pipe(fds) != 0) return 1;
    gofer::go([fd = fds[0]] {
      char c;
      gofer::blocking([&] { return ::read(fd, &c, 1); });
    });
    gofer::go([] { gofer::blocking([] { ::sleep(3600); }); });
    until_parked(2, "blocking call");
    std::printf("main returns while 2 fibers wait on blocking calls\n");
    return 0;
  });
}
