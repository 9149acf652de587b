// mpp-demo: the wiki's three multiprocessing workloads in C++, with timings.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <mpp/mpp.hpp>

#include "demo.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "mpp-demo: the workloads of the multiprocessing wiki page, run with mpp.\n"
      "Each workload runs sequentially (the baseline) and in parallel: a warm-up round, then\n"
      "--repeats timed rounds with the variants interleaved, each run from the same memory state;\n"
      "every output is verified (word counts, word shapes, no two processes producing the same\n"
      "stream, equal fingerprints where the words must be equal) and a table shows the median\n"
      "wall time (and range), CPU time, words/s, speedup over sequential, parallel efficiency.\n"
      "  files  wiki example 1: mpp::Process writing one file of pseudowords per process\n"
      "  queue  wiki example 2: processes put pseudowords in an mpp::Queue, main collects them\n"
      "  pool   wiki example 3: mpp::Pool::map of generate_pseudowords over letters\n"
      "  all    all three (what `make demo` runs)"};
  app.require_subcommand(1);
  demo::Options o;
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--jobs,-j", o.jobs, "worker processes (pool); 0 = cpu_count()");
    sub->add_option("--nice", o.nice, "niceness increment of the niced run (files, pool)");
    sub->add_flag("!--no-nice", o.with_nice, "skip the niced run");
    sub->add_option("--ionice", o.ionice, "best-effort I/O level 0-7 of the niced files run")
        ->check(CLI::Range(0, 7));
    sub->add_option("--words,-w", o.words, "pseudowords per process or task (wiki: 1,000,000)");
    sub->add_option("--tasks,-t", o.tasks, "processes (files, queue) or letters (pool)");
    sub->add_option("--out,-o", o.out, "directory for the files workload");
    sub->add_option("--seed", o.seed,
                    "seed (0 = fresh random seeds; pool always uses task_seed())");
    sub->add_flag("!--no-progress", o.progress, "no progress bar");
    sub->add_option("--repeats,-r", o.repeats, "timed runs of every variant (rows show medians)")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    sub->add_option("--warmup", o.warmup, "untimed rounds of every variant before the timed runs")
        ->check(CLI::Range(0, 100))
        ->capture_default_str();
    sub->add_option("--python-scale", o.python_scale,
                    "also run the wiki's Python (/usr/bin/python3) at 1/N of the words; 0 = skip")
        ->capture_default_str();
  };
  auto* files = app.add_subcommand("files", "wiki example 1: one Process per output file");
  auto* queue = app.add_subcommand("queue", "wiki example 2: collect words through a Queue");
  auto* pool = app.add_subcommand("pool", "wiki example 3: Pool.map over letters");
  auto* all =
      app.add_subcommand("all", "all three workloads at a size that runs in under a minute");
  for (auto* s : {files, queue, pool, all}) add_common(s);
  CLI11_PARSE(app, argc, argv);

  std::vector<demo::Row> rows;
  try {
    // `all` runs every variant 1 + 3 times (warm-up, then the medians' runs): it makes a quarter
    // of the words of a single workload's default, to stay around a minute on 2 cores.
    if (files->parsed() || all->parsed()) {
      demo::Options f = o;
      if (all->parsed() && all->count("--words") == 0) f.words = 250000;
      auto r = demo::run_files(f);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    if (queue->parsed() || all->parsed()) {
      demo::Options q = o;
      // `all` keeps the wiki's 32 producers but collects 2M words instead of 32M;
      // `queue --words 1000000` runs the wiki's full size.
      if (all->parsed() && all->count("--words") == 0) q.words = 62500;
      auto r = demo::run_queue(q);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    if (pool->parsed() || all->parsed()) {
      demo::Options p = o;
      // The wiki maps over its 97-letter string; `all` makes 50,000 words per letter (4.85M
      // words) instead of 1,000,000; `pool` alone is full size (97 x 10^6 words, ~3 GB held by
      // one result at a time).
      if (all->parsed() && all->count("--tasks") == 0) p.tasks = 97;
      if (all->parsed() && all->count("--words") == 0) p.words = 50000;
      if (pool->parsed() && pool->count("--tasks") == 0) p.tasks = 97;
      auto r = demo::run_pool(p);
      rows.insert(rows.end(), r.begin(), r.end());
    }
  } catch (const std::exception& e) {
    demo::print_table(rows, mpp::cpu_count());
    std::fprintf(stderr, "mpp-demo: FAILED: %s\n", e.what());
    return 1;
  }
  demo::print_table(rows, mpp::cpu_count());
  return 0;
}
