// mpp/detail/export.hpp: MPP_API, the mark on what libmpp.so and libmpp_mpi.so export.
//
// Why: mpp's libraries are compiled with -fvisibility=hidden (CMake's CXX_VISIBILITY_PRESET), so
// that a shared build exports only what the public headers declare and the library defines out of
// line: classes (their members, vtables and type_info, which `catch (const mpp::Error&)` needs
// across the library boundary) and free functions. Everything else (src/, the system-call layer,
// anonymous namespaces) stays inside the library, where calls to it are direct. Templates and
// inline functions are instantiated in the program that uses them and need no mark. A few src/
// internals (src/sys, src/pool/core.hpp) are marked too, each because libmpp_mpi.so calls it;
// tests/consumer checks that libmpp.so exports no other internal symbol.
//
// mpp is ELF-only (Linux), where one attribute serves both building and using the library; in a
// static build the mark is harmless. tests/consumer checks the shared build's exported symbols.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define MPP_API __attribute__((visibility("default")))
#else
#define MPP_API
#endif
