// mpp/start_method.hpp: how mpp starts its worker processes (Python's multiprocessing start
// methods), and mpp::init. Included by <mpp/process.hpp> and <mpp/pool.hpp>; docs/fork-safety.md
// says which to choose.
//
// What:
//   int main(int argc, char** argv) {
//     mpp::init(argc, argv);                               // first statement of main
//     mpp::set_start_method(mpp::StartMethod::forkserver); // or per pool:
//     PoolOptions::start_method
//     ...
//   }
//
// - fork (the default): a worker is a fork of the program: it sees the program's memory (lambdas
//   with captures work) but, in a program that runs other threads, it may inherit a lock one of
//   them held, which no thread of the worker will ever release. mpp::Pool forks its workers when
//   it is created and, from then on, every replacement (after a crash, task_timeout,
//   maxtasksperchild, a recycled worker) from a per-pool zygote: a process forked with the
//   workers, which never runs the program's threads. A call with a stateful callable forks its
//   own workers at the call (they must see the state of that moment). mpp prints one warning line
//   per process on stderr when it forks a worker from a process that runs other threads (silence
//   it with MPP_NO_FORK_WARNING=1 in the environment).
// - forkserver: workers (and their replacements) are forked by the program's forkserver, a fresh
//   execution of the program's own binary (/proc/self/exe) that mpp::init diverts before the rest
//   of main runs, started when the first forkserver Pool or Process is created; it never runs the
//   program's threads. The program may hold any locks and run any threads (OpenMP, loggers,
//   servers) when it creates or uses the pool.
// - spawn: every worker is a fresh execution of the program's binary, diverted by mpp::init.
// With forkserver and spawn, workers see the program as it was when init returned (a fresh
// execution), not later changes; so only callables without state can run there: functions,
// function pointers, captureless lambdas and empty functors (no registration lines), with
// arguments and results through the codec. A callable with state (a capturing lambda, a
// std::function, a functor with members) or an initializer that is not one of those is rejected
// with std::invalid_argument naming the start method.
//
// Security: the program talks to its forkserver and to spawned workers over inherited socket
// pairs (no name in the filesystem or the abstract namespace: no other process, of this user or
// another, can connect); what crosses is ids and codec bytes, never addresses to jump to.
//
// Threads: set_start_method/get_start_method may be called from any thread (an atomic).
#pragma once

#include "mpp/detail/export.hpp"

namespace mpp {

// How a Pool's workers and a Process's child start (docs/fork-safety.md): fork = a copy of this
// process (the default); forkserver = forks of a fresh execution of this program started once;
// spawn = a fresh execution per child.
enum class StartMethod { fork, forkserver, spawn };

// The first statement of main(). In the program itself it records argv (a spawned worker and the
// forkserver are started with the same arguments) and returns at once. In a process that mpp
// started as a forkserver or a spawned worker it serves and never returns. Harmless with fork.
// Creating a forkserver or spawn Pool or Process without it throws std::logic_error. Never
// throws.
MPP_API void init(int argc, char** argv) noexcept;

// Process-wide default for Pools and Processes created later (PoolOptions::start_method and
// ProcessOptions::start_method override it). Never throws.
MPP_API void set_start_method(StartMethod method) noexcept;
// fork unless set_start_method chose another. Never throws.
[[nodiscard]] MPP_API StartMethod get_start_method() noexcept;

// "fork", "forkserver", "spawn". Never throws.
[[nodiscard]] MPP_API const char* to_string(StartMethod method) noexcept;

}  // namespace mpp
