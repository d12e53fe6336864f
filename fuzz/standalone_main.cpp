// A libFuzzer stand-in for compilers without -fsanitize=fuzzer (the GCC builds of the test command):
// runs every seed file, then a fixed number of random mutations of them, through the target's
// LLVMFuzzerTestOneInput. Deterministic for a given -seed, so a failure reproduces.
//
//   fuzz_table_driver [-runs=N] [-seed=S] [-max_len=L] FILE|DIR...
//
// The mutations are libFuzzer's simplest ones: flip, insert, erase and repeat bytes, splice two
// seeds, replace a number, insert a word from the seeds.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void run_one(const std::string& input) {
  // A copy in its own allocation, so ASan sees reads past the end.
  std::vector<std::uint8_t> bytes(input.begin(), input.end());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
}

std::string mutate(std::string s, const std::vector<std::string>& seeds, const std::vector<std::string>& words,
                   std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return n == 0 ? std::size_t(0) : std::size_t(rng() % n); };
  int rounds = 1 + int(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    switch (rng() % 8) {
    case 0:
      if (!s.empty())
        s[pick(s.size())] ^= char(1u << (rng() % 8));
      break;
    case 1: s.insert(s.begin() + std::ptrdiff_t(pick(s.size() + 1)), char(rng() % 256)); break;
    case 2:
      if (!s.empty()) {
        std::size_t at = pick(s.size());
        s.erase(at, 1 + pick(std::min<std::size_t>(8, s.size() - at)));
      }
      break;
    case 3:
      if (!s.empty()) {
        std::size_t at = pick(s.size());
        std::size_t len = 1 + pick(std::min<std::size_t>(16, s.size() - at));
        s.insert(at, s.substr(at, len));
      }
      break;
    case 4: {
      const std::string& other = seeds[pick(seeds.size())];
      s = s.substr(0, pick(s.size() + 1)) + other.substr(pick(other.size() + 1));
      break;
    }
    case 5: { // replace the first number after a random point
      std::size_t at = s.find_first_of("0123456789", pick(s.size() + 1));
      if (at != std::string::npos) {
        std::size_t end = s.find_first_not_of("0123456789", at);
        static const char* const numbers[] = {"0",          "1",          "2",     "3",     "4",    "5",
                                              "9",          "10",         "50",    "51",    "1024", "1025",
                                              "4294967295", "4294967296", "60000", "60001", "00",   "01"};
        s.replace(at, (end == std::string::npos ? s.size() : end) - at, numbers[pick(std::size(numbers))]);
      }
      break;
    }
    case 6:
      if (!words.empty())
        s.insert(pick(s.size() + 1), " " + words[pick(words.size())] + " ");
      break;
    default: {
      std::size_t at = s.find(' ', pick(s.size() + 1));
      if (at != std::string::npos)
        s.erase(at, 1);
      break;
    }
    }
  }
  return s;
}

} // namespace

int main(int argc, char** argv) {
  std::uint64_t runs = 1000, seed = 1;
  std::size_t max_len = 4096;
  std::vector<std::string> seeds;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("-runs=", 0) == 0) {
      runs = std::stoull(a.substr(6));
    } else if (a.rfind("-seed=", 0) == 0) {
      seed = std::stoull(a.substr(6));
    } else if (a.rfind("-max_len=", 0) == 0) {
      max_len = std::stoull(a.substr(9));
    } else if (std::filesystem::is_directory(a)) {
      std::vector<std::filesystem::path> files;
      for (const auto& e : std::filesystem::directory_iterator(a))
        if (e.is_regular_file())
          files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files)
        seeds.push_back(read_file(f));
    } else if (std::filesystem::is_regular_file(a)) {
      seeds.push_back(read_file(a));
    } else {
      std::fprintf(stderr, "fuzz driver: no such file or directory: %s\n", a.c_str());
      return 2;
    }
  }
  if (seeds.empty())
    seeds.emplace_back();
  std::vector<std::string> words;
  for (const auto& s : seeds) {
    std::istringstream in(s);
    for (std::string w; in >> w && words.size() < 4096;)
      words.push_back(w);
  }
  for (const auto& s : seeds)
    run_one(s.substr(0, max_len));
  std::mt19937_64 rng(seed);
  for (std::uint64_t i = 0; i < runs; ++i) {
    std::string m = mutate(seeds[rng() % seeds.size()], seeds, words, rng);
    run_one(m.substr(0, max_len));
  }
  std::printf("%zu seeds and %llu mutations: 0 failed\n", seeds.size(), static_cast<unsigned long long>(runs));
  return 0;
}
