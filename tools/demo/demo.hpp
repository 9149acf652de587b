// The demo tool's pieces: options shared by every workload, timing, the result table.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace demo {

struct Options {
  unsigned jobs = 0;      // 0 = the wiki's 32 for files/queue, mpp::cpu_count() for pool
  int nice = 10;          // increment used by the "--nice" rows
  bool with_nice = true;  // also run a niced variant
  int ionice = 7;        // best-effort I/O level of the niced files run (0..7; being nice to disks)
  long words = 1000000;  // words per process / per task (the wiki's 1,000,000)
  int tasks = 32;        // processes (files, queue) or letters (pool)
  std::string out = "mpp-demo-out";
  std::uint64_t seed = 0;  // 0 = random seeds (files/queue), fixed task seeds otherwise
  bool progress = true;
  int python_scale = 10;  // run the wiki's Python at 1/N of the words for comparison; 0 = skip
  int warmup = 1;         // untimed rounds of every variant before the timed ones
  int repeats = 3;        // timed rounds; rows show the median (and the range)
};

struct Row {
  std::string workload;  // "files", "queue", "pool"
  std::string variant;   // "sequential", "32 processes", ...
  double wall_s = 0;     // median over the timed runs
  double cpu_s = 0;      // user+system of this process and its reaped children (median)
  double wall_min = 0;   // fastest and slowest timed run
  double wall_max = 0;
  int runs = 1;           // timed runs behind the medians
  double words = 0;       // words produced per run
  bool verified = false;  // output checked
  std::string note;
};

// One run of a variant: wall and CPU time of its timed part, and a fingerprint of its output
// (0: none), computed after the timing, so that no run holds another run's output.
struct Sample {
  double wall_s = 0;
  double cpu_s = 0;
  std::uint64_t fingerprint = 0;
};

// Runs fn and measures wall and CPU time (including children reaped during fn).
Row timed(const std::string& workload, const std::string& variant,
          const std::function<double()>& fn);
Sample time_it(const std::function<void()>& fn);

// A workload's variants, measured alike: o.warmup untimed rounds of every variant, then
// o.repeats timed rounds, the variants interleaved (v1 v2 v3 v1 v2 v3 ...) so that a change in
// the machine's load hits each of them; every run starts with the previous run's output freed
// (and its files removed). Each row holds medians. Variants in `same_output` must give equal
// fingerprints in every run (deterministic output); the check throws otherwise.
struct Variant {
  std::string name;
  std::function<Sample()> run;  // does its own set-up and verification, outside the timing
  bool same_output = false;
  std::string note{};
};
std::vector<Row> measure(const std::string& workload, const std::vector<Variant>& variants,
                         double words, const Options& o);

// FNV-1a, to fingerprint outputs word by word.
struct Fnv {
  std::uint64_t h = 1469598103934665603ULL;
  void add(std::string_view s) {
    for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;  // a separator: "ab","c" differs from "a","bc"
  }
};

void print_table(const std::vector<Row>& rows, unsigned cpus);

// Runs one of the wiki's Python scripts (tools/demo/python) with /usr/bin/python3 and returns its
// row (wall time as the script measured it, without interpreter start-up), or nullopt when Python
// is missing or the script failed.
std::optional<Row> run_python(const std::string& workload, const std::string& script,
                              const std::string& args, double words, int scale);

// Workloads: each returns rows (a sequential baseline first), throws on wrong output.
std::vector<Row> run_files(const Options& o);
std::vector<Row> run_queue(const Options& o);
std::vector<Row> run_pool(const Options& o);

// The pseudoword of the wiki: choice('bdvl') + choice('aoi') + choice('pkl').
struct Rng {
  std::uint64_t s;
  explicit Rng(std::uint64_t seed) : s(seed ? seed : 0x9E3779B97F4A7C15ull) {}
  std::uint64_t next() {  // splitmix64: tiny and good enough for picking letters
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  char choice(const char* letters, unsigned n) {
    return letters[static_cast<unsigned>(((next() >> 32) * n) >> 32)];
  }
};

}  // namespace demo
