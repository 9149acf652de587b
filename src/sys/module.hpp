// Code identity across executions of one program: where a function lies in its module (the
// executable or a shared library), in terms another execution of the same program can check and
// turn back into an address of its own (its load addresses differ: ASLR).
//
// Why not send the address: a worker started by StartMethod::forkserver or spawn is a fresh
// execution, so the submitter's address means nothing there, and jumping to a number received
// from another process is what mpp never does. A CodeRef names the module by its GNU build id
// (the linker's hash of its contents; the path's hash for a module without one), the function by
// its offset from the module's load bias, and carries a hash of the function's first bytes.
// code_at() accepts it only if a module with that identity is loaded here, the offset falls
// inside one of its executable segments, and the bytes there hash the same: a stale or forged
// reference is refused, never called.
#pragma once

#include <cstdint>

namespace mpp::sys {

struct CodeRef {
  std::uint64_t module = 0;       // build id hash (path hash without one); 0 = none
  std::uint64_t offset = 0;       // from the module's load bias
  std::uint64_t fingerprint = 0;  // hash of the first bytes of the code there
};

// The reference of `code` (a function's address) in this process. False when no loaded module
// has an executable segment containing it. Takes the dynamic loader's lock (dl_iterate_phdr:
// ~1 us with a dozen modules); callers cache. Never throws.
bool code_ref_of(const void* code, CodeRef& out) noexcept;

// The address `ref` names in this process, after the checks above; nullptr (and `why` set to a
// static message) when one fails. Never throws.
[[nodiscard]] const void* code_at(const CodeRef& ref, const char** why) noexcept;

}  // namespace mpp::sys
