// Workload 1 of the wiki: generate_pseudowordfile(filename) x N, sequentially and with one
// mpp::Process per file (and niced).
#include <unistd.h>  // sync

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mpp/mpp.hpp>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "demo.hpp"

namespace demo {
namespace {

void generate_pseudowordfile(const std::string& filename, long words, std::uint64_t seed) {
  std::ofstream f(filename, std::ios::app);
  Rng rng(seed);
  std::string buf;
  buf.reserve(static_cast<std::size_t>(words) * 4);
  for (long i = 0; i < words; ++i) {
    buf += rng.choice("bdvl", 4);
    buf += rng.choice("aoi", 3);
    buf += rng.choice("pkl", 3);
    buf += '\n';
  }
  f.write(buf.data(), static_cast<std::streamsize>(buf.size()));
}

std::uint64_t seed_for(const Options& o, int i) {
  // With --seed the files are reproducible; without, every process draws its own (fork copies
  // the parent's RNG state, so seeding must happen per process).
  return o.seed ? o.seed * 1000003u + static_cast<std::uint64_t>(i)
                : std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32);
}

// Checks every file: right number of lines, each a valid pseudoword, no two files identical.
void verify(const std::string& dir, int n, long words) {
  std::set<std::size_t> hashes;
  for (int i = 0; i < n; ++i) {
    std::ifstream in(dir + "/output" + std::to_string(i), std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (data.size() != static_cast<std::size_t>(words) * 4)
      throw std::runtime_error("files: " + dir + "/output" + std::to_string(i) +
                               " has the wrong size");
    for (std::size_t k = 0; k < data.size(); k += 4) {
      if (std::string_view("bdvl").find(data[k]) == std::string_view::npos ||
          std::string_view("aoi").find(data[k + 1]) == std::string_view::npos ||
          std::string_view("pkl").find(data[k + 2]) == std::string_view::npos ||
          data[k + 3] != '\n')
        throw std::runtime_error("files: malformed word in output" + std::to_string(i));
    }
    hashes.insert(std::hash<std::string>{}(data));
  }
  if (words >= 16 && static_cast<int>(hashes.size()) != n)
    throw std::runtime_error("files: two processes wrote identical files (shared RNG state)");
}

void fresh_dir(const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
}

}  // namespace

// Each run writes into a fresh directory, is verified, then its files are removed and the dirty
// pages flushed (sync, untimed), so that no run competes with the write-back of an earlier one.
std::vector<Row> run_files(const Options& o) {
  const int n = o.tasks;
  const std::string base = o.out + "/files";
  const double total = static_cast<double>(n) * static_cast<double>(o.words);
  auto finish = [&](const std::string& dir, Sample s) {
    verify(dir, n, o.words);
    std::filesystem::remove_all(dir);
    sync();
    return s;
  };
  std::vector<Variant> variants;
  variants.push_back({"sequential", [&] {
                        const std::string dir = base + "/sequential";
                        fresh_dir(dir);
                        return finish(dir, time_it([&] {
                                        for (int i = 0; i < n; ++i)
                                          generate_pseudowordfile(
                                              dir + "/output" + std::to_string(i), o.words,
                                              seed_for(o, i));
                                      }));
                      }});
  // The niced run is nice to the disks too: best-effort I/O at o.ionice (ionice -c2 -n N).
  auto parallel = [&](std::optional<int> nice) {
    return [&, nice] {
      const std::optional<int> ionice = nice ? std::optional<int>(o.ionice) : std::nullopt;
      const std::string dir = base + "/" + (nice ? "niced" : "processes");
      fresh_dir(dir);
      return finish(dir, time_it([&] {
                      std::vector<mpp::Process> procs;
                      procs.reserve(static_cast<std::size_t>(n));
                      for (int i = 0; i < n; ++i) {
                        procs.emplace_back(mpp::ProcessOptions{.nice = nice, .ionice = ionice},
                                           generate_pseudowordfile,
                                           dir + "/output" + std::to_string(i), o.words,
                                           seed_for(o, i));
                        procs.back().start();
                      }
                      for (auto& p : procs) {
                        p.join();
                        if (p.exitcode() != 0) throw std::runtime_error("files: a process failed");
                      }
                    }));
    };
  };
  variants.push_back({std::to_string(n) + " processes", parallel(std::nullopt)});
  if (o.with_nice)
    variants.push_back({std::to_string(n) + " processes, nice +" + std::to_string(o.nice) +
                            ", ionice " + std::to_string(o.ionice),
                        parallel(o.nice)});
  std::vector<Row> rows = measure("files", variants, total, o);
  if (o.python_scale > 0) {
    long w = std::max(1L, o.words / o.python_scale);
    if (auto py = run_python("files", "wiki_files.py",
                             base + "/python " + std::to_string(n) + " " + std::to_string(w),
                             static_cast<double>(n) * static_cast<double>(w), o.python_scale))
      rows.push_back(*py);
  }
  return rows;
}

}  // namespace demo
