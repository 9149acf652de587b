// The function registry (mpp/detail/registry.hpp): ids for callables that do not depend on load
// addresses, used by mpp::mpi::Pool (across ranks) and by mpp::Pool under StartMethod::forkserver
// and spawn (across fresh executions of the program).
//
// Entries are added by static initializers before main (Trampoline<...>::id, MPP_MPI_REGISTER),
// identically in every execution of one program, then only read; the MPI start-up handshake
// compares registry_hash() across ranks so that a rank running another build is refused up front.
#include "mpp/detail/registry.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/registry.hpp"
#include "sys/demangle.hpp"

namespace mpp::detail {

namespace {

std::uint64_t fnv1a(const char* s, std::uint64_t h = 0xcbf29ce484222325ULL) noexcept {
  for (; *s != '\0'; ++s) {
    h ^= static_cast<unsigned char>(*s);
    h *= 0x100000001b3ULL;
  }
  return h;
}

struct TrampolineEntry {
  const char* key;
  const char* callable;
  TaskFn fn;
  bool clash = false;
  std::string pretty;  // demangled callable, filled on first use
};

struct FunctionEntry {
  const char* name;
  const char* signature;
  AnyFn fn;
  bool clash = false;
};

struct Registry {
  std::unordered_map<std::uint64_t, TrampolineEntry> trampolines;
  std::unordered_map<std::uint64_t, FunctionEntry> functions;
  std::unordered_map<std::uintptr_t, std::uint64_t> by_address;
};

// Made on first use, so that it exists before the first static initializer that registers; not
// a function-local static, whose guard a fork in another thread could catch half-way (issue 16:
// the child would wait on it forever). Never destroyed: registrations are looked up until exit.
std::atomic<Registry*> g_registry{nullptr};
Registry& registry() noexcept {
  Registry* r = g_registry.load(std::memory_order_acquire);
  if (r != nullptr) return *r;
  auto* fresh = new Registry;  // NOLINT(cppcoreguidelines-owning-memory): lives until exit
  if (g_registry.compare_exchange_strong(r, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;  // another thread made it first
  return *r;
}

std::string hex(std::uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

std::uint64_t register_trampoline(const char* key, const char* callable, TaskFn t) noexcept {
  const std::uint64_t id = fnv1a(key);
  try {
    auto [it, inserted] =
        registry().trampolines.try_emplace(id, TrampolineEntry{key, callable, t, false, {}});
    // The same key seen again is the same template instance (another TU's copy before the
    // linker merged them, or a second shared object): only a different key is a real clash.
    if (!inserted && std::strcmp(it->second.key, key) != 0) it->second.clash = true;
  } catch (...) {
    // Out of memory before main: the id stays unknown here and the handshake reports it.
  }
  return id;
}

std::uint64_t register_function(const char* name, const char* signature, AnyFn f) noexcept {
  const std::uint64_t id = fnv1a(signature, fnv1a(name) ^ 0x9e3779b97f4a7c15ULL);
  try {
    auto& r = registry();
    auto [it, inserted] = r.functions.try_emplace(id, FunctionEntry{name, signature, f, false});
    if (!inserted && it->second.fn != f) it->second.clash = true;
    r.by_address.emplace(reinterpret_cast<std::uintptr_t>(f), id);
  } catch (...) {
  }
  return id;
}

std::uint64_t function_id(AnyFn f, const char* type_name) {
  auto& r = registry();
  auto it = r.by_address.find(reinterpret_cast<std::uintptr_t>(f));
  if (it == r.by_address.end()) {
    throw std::invalid_argument(
        "mpp::mpi::Pool: this function (type " + sys::demangle(type_name) +
        ") is not registered, so other ranks cannot find it: add MPP_MPI_REGISTER(name) at "
        "namespace scope, or pass mpp::mpi::fn<&name>");
  }
  const auto& e = r.functions.at(it->second);
  if (e.clash) {
    throw std::logic_error(
        std::string("mpp::mpi::Pool: two different functions were registered as ") + e.name +
        "; register each function once");
  }
  return it->second;
}

void check_trampoline(std::uint64_t id) {
  auto& r = registry();
  auto it = r.trampolines.find(id);
  if (it == r.trampolines.end()) {
    throw std::logic_error("mpp::mpi::Pool: callable used before static initialization ended");
  }
  if (it->second.clash) {
    throw std::logic_error("mpp::mpi::Pool: two different callables share the name " +
                           sys::demangle(it->second.callable) +
                           " (lambdas in same-named variables of different files?); give them "
                           "distinct names");
  }
}

std::uint64_t registry_hash() noexcept {
  try {
    auto& r = registry();
    std::vector<std::uint64_t> ids;
    ids.reserve(r.trampolines.size() + r.functions.size());
    for (const auto& [id, e] : r.trampolines) ids.push_back(id ^ (e.clash ? 1 : 0));
    for (const auto& [id, e] : r.functions) ids.push_back(~id ^ (e.clash ? 1 : 0));
    std::sort(ids.begin(), ids.end());
    std::uint64_t h = 0xcbf29ce484222325ULL ^ ids.size();
    for (std::uint64_t v : ids) {
      for (int b = 0; b < 8; ++b) {
        h ^= (v >> (8 * b)) & 0xff;
        h *= 0x100000001b3ULL;
      }
    }
    return h;
  } catch (...) {
    return 0;
  }
}

TaskFn find_trampoline(std::uint64_t id) noexcept {
  Registry* r = g_registry.load(std::memory_order_acquire);
  if (r == nullptr) return nullptr;
  auto t = r->trampolines.find(id);
  if (t == r->trampolines.end() || t->second.clash) return nullptr;
  return t->second.fn;
}

std::size_t registry_size() noexcept {
  auto& r = registry();
  return r.trampolines.size() + r.functions.size();
}

Resolved resolve(std::uint64_t trampoline, std::uint64_t function) {
  auto& r = registry();
  Resolved out;
  auto t = r.trampolines.find(trampoline);
  if (t == r.trampolines.end() || t->second.clash) {
    out.error = "this process does not know callable id " + hex(trampoline) +
                " (a different build of the program?)";
    return out;
  }
  if (t->second.pretty.empty()) t->second.pretty = sys::demangle(t->second.callable);
  out.trampoline = t->second.fn;
  out.name = t->second.pretty.c_str();
  if (function != 0) {
    auto f = r.functions.find(function);
    if (f == r.functions.end() || f->second.clash) {
      out.error = "this process does not know function id " + hex(function) +
                  " (registered with MPP_MPI_REGISTER in the submitting process only?)";
      out.trampoline = nullptr;
      return out;
    }
    out.fn = f->second.fn;
    out.name = f->second.name;
  }
  return out;
}

}  // namespace mpp::detail
