// sync.Once for lazy initialisation, as Go programs load a configuration or
// open a shared resource on first use: a hundred fibers ask for it at once,
// the initialiser runs exactly once (and parks while it works, so the others
// really wait), and every caller sees the finished value. A second once
// whose initialiser fails the first time: the exception reaches that caller,
// and a later call tries again (std::call_once's rule).
#include <gofer/gofer.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

namespace {

gofer::once config_once;
std::map<std::string, std::string> config;  // written once, under config_once
std::atomic<int> loads{0};

const std::map<std::string, std::string>& get_config() {
  config_once.call([] {
    loads.fetch_add(1);
    gofer::this_fiber::sleep_for(2ms);  // reading a file, say
    config = {{"name", "gofer"}, {"procs", "auto"}};
  });
  return config;
}

gofer::once conn_once;
std::atomic<int> attempts{0};
std::string connection;  // written under conn_once

const std::string& get_connection() {
  conn_once.call([] {
    int n = attempts.fetch_add(1) + 1;
    gofer::this_fiber::yield();
    if (n == 1) throw std::runtime_error("first attempt refused");
    connection = "connected on attempt " + std::to_string(n);
  });
  return connection;
}

}  // namespace

int main() {
  return gofer::run([] {
    std::atomic<int> saw_full{0};
    gofer::wait_group wg;
    wg.add(100);
    for (int i = 0; i < 100; ++i) {
      gofer::go([&] {
        DEFER(wg.done());
        const auto& c = get_config();
        if (c.size() == 2 && c.at("name") == "gofer") saw_full.fetch_add(1);
      });
    }
    wg.wait();
    std::printf("config loaded %d time(s); %d of 100 callers saw it whole\n", loads.load(), saw_full.load());

    std::atomic<int> failed{0}, connected{0};
    wg.add(20);
    for (int i = 0; i < 20; ++i) {
      gofer::go([&] {
        DEFER(wg.done());
        try {
          if (get_connection().rfind("connected", 0) == 0) connected.fetch_add(1);
        } catch (const std::runtime_error&) {
          failed.fetch_add(1);
        }
      });
    }
    wg.wait();
    std::printf("%d caller failed, %d connected; %s\n", failed.load(), connected.load(), connection.c_str());
  });
}
