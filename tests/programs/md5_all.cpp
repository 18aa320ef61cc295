// The Go blog's "Pipelines and cancellation", its last shape: MD5All with
// bounded parallelism. One fiber walks a directory tree and sends the paths
// of regular files; a fixed number of digesters read and hash them; the
// results are gathered, sorted by path and printed as md5sum prints them. A
// done channel stops the walk and the digesters early when main returns
// before taking every result (here: when the walk fails).
//
// Reading a file is a blocking system call, which Go's runtime hides; here
// it goes through gofer::blocking, so a digester parks instead of holding
// its thread. The tree is made fresh in a temporary directory and removed at
// the end. MD5 is written out from RFC 1321 so the program needs nothing
// else.
#include <gofer/gofer.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace fs = std::filesystem;

namespace {

// RFC 1321, section 3.
std::array<std::uint8_t, 16> md5(const std::string& message) {
  static const std::array<std::uint32_t, 64> k = [] {
    std::array<std::uint32_t, 64> t{};
    for (int i = 0; i < 64; ++i) t[i] = static_cast<std::uint32_t>(std::floor(std::fabs(std::sin(i + 1)) * 4294967296.0));
    return t;
  }();
  static constexpr int shifts[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};
  std::string m = message;
  const std::uint64_t bits = static_cast<std::uint64_t>(message.size()) * 8;
  m.push_back(static_cast<char>(0x80));
  while (m.size() % 64 != 56) m.push_back('\0');
  for (int i = 0; i < 8; ++i) m.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  std::uint32_t a0 = 0x67452301, b0 = 0xefcdab89, c0 = 0x98badcfe, d0 = 0x10325476;
  for (std::size_t chunk = 0; chunk < m.size(); chunk += 64) {
    std::uint32_t w[16];
    for (int i = 0; i < 16; ++i) {
      w[i] = 0;
      for (int b = 3; b >= 0; --b) w[i] = (w[i] << 8) | static_cast<std::uint8_t>(m[chunk + 4 * i + b]);
    }
    std::uint32_t a = a0, b = b0, c = c0, d = d0;
    for (int i = 0; i < 64; ++i) {
      std::uint32_t f;
      int g;
      switch (i / 16) {
        case 0: f = (b & c) | (~b & d), g = i; break;
        case 1: f = (d & b) | (~d & c), g = (5 * i + 1) % 16; break;
        case 2: f = b ^ c ^ d, g = (3 * i + 5) % 16; break;
        default: f = c ^ (b | ~d), g = (7 * i) % 16;
      }
      const int s = shifts[i / 16][i % 4];
      const std::uint32_t sum = a + f + k[i] + w[g];
      a = d, d = c, c = b;
      b = b + ((sum << s) | (sum >> (32 - s)));
    }
    a0 += a, b0 += b, c0 += c, d0 += d;
  }
  std::array<std::uint8_t, 16> out{};
  const std::uint32_t words[4] = {a0, b0, c0, d0};
  for (int i = 0; i < 16; ++i) out[i] = static_cast<std::uint8_t>(words[i / 4] >> (8 * (i % 4)));
  return out;
}

std::string hex(const std::array<std::uint8_t, 16>& sum) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (auto b : sum) s += digits[b >> 4], s += digits[b & 15];
  return s;
}

struct result {
  std::string path;
  std::array<std::uint8_t, 16> sum;
  std::string error;  // empty when the file was read
};

// Sends the path of every regular file under root on the returned channel,
// until done is closed; then sends the walk's error (empty for none).
std::pair<gofer::recv_chan<std::string>, gofer::recv_chan<std::string>> walk_files(gofer::recv_chan<gofer::unit> done,
                                                                                  const fs::path& root) {
  gofer::chan<std::string> paths;
  gofer::chan<std::string> errc(1);
  gofer::go([=] {
    std::string err;
    try {
      std::vector<std::string> found = gofer::blocking([&] {
        std::vector<std::string> v;
        for (const auto& e : fs::recursive_directory_iterator(root))
          if (e.is_regular_file()) v.push_back(e.path().string());
        return v;
      });
      for (const std::string& p : found) {
        bool cancelled = false;
        gofer::select(gofer::on_send(paths, p), gofer::on_recv(done, [&] { cancelled = true; }));
        if (cancelled) {
          err = "walk canceled";
          break;
        }
      }
    } catch (const fs::filesystem_error& e) {
      err = e.code().message();
    }
    paths.close();
    errc.send(err);
  });
  return {paths, errc};
}

void digester(gofer::recv_chan<gofer::unit> done, gofer::recv_chan<std::string> paths, gofer::send_chan<result> c) {
  for (const std::string& p : paths) {
    result r{p, {}, {}};
    try {
      std::string data = gofer::blocking([&] {
        std::ifstream f(p, std::ios::binary);
        if (!f) throw std::runtime_error("cannot open " + p);
        return std::string(std::istreambuf_iterator<char>(f), {});
      });
      r.sum = md5(data);
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    bool cancelled = false;
    gofer::select(gofer::on_send(c, std::move(r)), gofer::on_recv(done, [&] { cancelled = true; }));
    if (cancelled) return;
  }
}

// MD5All: the MD5 sum of every file under root, or the first error.
std::map<std::string, std::array<std::uint8_t, 16>> md5_all(const fs::path& root) {
  gofer::chan<gofer::unit> done;
  DEFER(done.close());  // tells the walker and the digesters to stop when we return early

  auto [paths, errc] = walk_files(done, root);
  gofer::chan<result> c;
  gofer::wait_group wg;
  constexpr int num_digesters = 20;
  wg.add(num_digesters);
  for (int i = 0; i < num_digesters; ++i) {
    gofer::go([&wg, done, paths = paths, c] {
      DEFER(wg.done());
      digester(done, paths, c);
    });
  }
  gofer::go([&wg, c] {
    wg.wait();
    c.close();
  });

  std::map<std::string, std::array<std::uint8_t, 16>> m;
  for (result r : c) {
    if (!r.error.empty()) throw std::runtime_error(r.error);
    m[r.path] = r.sum;
  }
  if (std::string err = *errc.recv(); !err.empty()) throw std::runtime_error(err);
  return m;
}

}  // namespace

int main() {
  return gofer::run([] {
    char templ[] = "/tmp/gofer-md5-XXXXXX";
    if (::mkdtemp(templ) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    const fs::path root = templ;
    DEFER(fs::remove_all(root));
    // 40 files in four folders; file i holds "line i" i times.
    for (int i = 0; i < 40; ++i) {
      fs::path dir = root / ("dir" + std::to_string(i % 4));
      fs::create_directories(dir);
      std::ofstream f(dir / ("file" + std::to_string(i) + ".txt"), std::ios::binary);
      for (int j = 0; j < i; ++j) f << "line " << i << "\n";
    }

    for (const auto& [path, sum] : md5_all(root))
      std::printf("%s  %s\n", hex(sum).c_str(), fs::relative(path, root).c_str());

    try {
      md5_all(root / "no such directory");
      std::printf("no error for a missing directory\n");
    } catch (const std::runtime_error& e) {
      std::printf("missing directory: %s\n", e.what());
    }
    return 0;
  });
}
