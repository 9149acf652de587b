// Code identity across executions (see module.hpp): dl_iterate_phdr over the loaded modules.
#include "sys/module.hpp"

#include <elf.h>
#include <link.h>

#include <cstddef>
#include <cstring>

namespace mpp::sys {

namespace {

// Bytes of code hashed by the fingerprint (or fewer, up to the end of its segment).
constexpr std::size_t kFingerprintBytes = 32;

std::uint64_t fnv1a(const unsigned char* p, std::size_t n,
                    std::uint64_t h = 0xcbf29ce484222325ULL) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

// The module's identity: its GNU build id note, else its path.
std::uint64_t module_key(const dl_phdr_info* info) noexcept {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const auto* p = reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr);
    std::size_t left = ph.p_memsz;
    while (left >= sizeof(ElfW(Nhdr))) {
      ElfW(Nhdr) nh;
      std::memcpy(&nh, p, sizeof nh);
      const std::size_t name_sz = (nh.n_namesz + 3) & ~std::size_t{3};
      const std::size_t desc_sz = (nh.n_descsz + 3) & ~std::size_t{3};
      const std::size_t total = sizeof nh + name_sz + desc_sz;
      if (total > left) break;
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
          std::memcmp(p + sizeof nh, "GNU", 4) == 0) {
        const std::uint64_t h = fnv1a(p + sizeof nh + name_sz, nh.n_descsz);
        return h == 0 ? 1 : h;
      }
      p += total;
      left -= total;
    }
  }
  const char* name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  const std::uint64_t h =
      fnv1a(reinterpret_cast<const unsigned char*>(name), std::strlen(name), 0x84222325cbf29ce4ULL);
  return h == 0 ? 1 : h;
}

// The executable segment of `info` containing `addr`: its end, or 0 when none does.
std::uintptr_t exec_segment_end(const dl_phdr_info* info, std::uintptr_t addr) noexcept {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_X) == 0) continue;
    const std::uintptr_t begin = info->dlpi_addr + ph.p_vaddr;
    const std::uintptr_t end = begin + ph.p_memsz;
    if (addr >= begin && addr < end) return end;
  }
  return 0;
}

std::uint64_t fingerprint(std::uintptr_t addr, std::uintptr_t seg_end) noexcept {
  const std::size_t n = seg_end - addr < kFingerprintBytes ? seg_end - addr : kFingerprintBytes;
  return fnv1a(reinterpret_cast<const unsigned char*>(addr), n);
}

struct Find {
  std::uintptr_t addr = 0;  // code_ref_of: the address to place
  CodeRef ref{};            // code_at: the reference to resolve
  std::uintptr_t found = 0;
  std::uintptr_t seg_end = 0;
  bool module_seen = false;
};

int find_by_address(dl_phdr_info* info, std::size_t, void* data) noexcept {
  auto* f = static_cast<Find*>(data);
  const std::uintptr_t end = exec_segment_end(info, f->addr);
  if (end == 0) return 0;
  f->ref.module = module_key(info);
  f->ref.offset = f->addr - info->dlpi_addr;
  f->seg_end = end;
  return 1;
}

int find_by_ref(dl_phdr_info* info, std::size_t, void* data) noexcept {
  auto* f = static_cast<Find*>(data);
  if (module_key(info) != f->ref.module) return 0;
  f->module_seen = true;
  const std::uintptr_t addr = info->dlpi_addr + f->ref.offset;
  const std::uintptr_t end = exec_segment_end(info, addr);
  if (end == 0) return 0;
  f->found = addr;
  f->seg_end = end;
  return 1;
}

}  // namespace

bool code_ref_of(const void* code, CodeRef& out) noexcept {
  Find f;
  f.addr = reinterpret_cast<std::uintptr_t>(code);
  if (::dl_iterate_phdr(&find_by_address, &f) == 0) return false;
  f.ref.fingerprint = fingerprint(f.addr, f.seg_end);
  out = f.ref;
  return true;
}

const void* code_at(const CodeRef& ref, const char** why) noexcept {
  Find f;
  f.ref = ref;
  if (::dl_iterate_phdr(&find_by_ref, &f) == 0) {
    *why = f.module_seen ? "the function's offset is outside the code of its module here"
                         : "the function's module (build id) is not loaded here";
    return nullptr;
  }
  if (fingerprint(f.found, f.seg_end) != ref.fingerprint) {
    *why = "the code at the function's offset differs here (another build of the module?)";
    return nullptr;
  }
  return reinterpret_cast<const void*>(f.found);
}

}  // namespace mpp::sys
