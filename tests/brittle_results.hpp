// Results a pool's owner cannot decode, shared by the local pool's and the MPI pool's decode
// failure tests (tests/test_pool_faults.cpp, tests/mpi/test_mpi.cpp), and the checks on what a
// failed position rethrows.
#pragma once

#include <exception>
#include <string>
#include <tuple>
#include <variant>

#include "mpp/codec.hpp"
#include "mpp/errors.hpp"

namespace mpp::test {

// The codec default-constructs a variant's alternative before decoding into it, and only the
// decoder does that (the task builds it from a value). Kind 0 throws SerializationError there,
// kind 1 a non-std exception.
template <int Kind>
class Brittle {
 public:
  Brittle() {
    if constexpr (Kind == 0) {
      throw mpp::SerializationError("brittle result");
    } else {
      throw 42;
    }
  }
  explicit Brittle(int v) : v_(v) {}

 private:
  friend struct mpp::codec::Fields<Brittle>;
  int v_ = 0;
};

// The result of task x: a Brittle for `bad`, 2 * x otherwise.
template <int Kind, int Bad>
std::variant<int, Brittle<Kind>> brittle_result(int x) {
  if (x == Bad) return Brittle<Kind>(x);
  return 2 * x;
}

// Whether `e` is the decoder's own error (kind 0: SerializationError "brittle result", kind 1:
// the int 42).
template <int Kind>
bool is_decoder_error(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const mpp::SerializationError& s) {
    return Kind == 0 && std::string(s.what()).find("brittle result") != std::string::npos;
  } catch (int v) {
    return Kind == 1 && v == 42;
  } catch (...) {
  }
  return false;
}

inline bool is_serialization_error(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const mpp::SerializationError&) {
    return true;
  } catch (...) {
  }
  return false;
}

}  // namespace mpp::test

template <int Kind>
struct mpp::codec::Fields<mpp::test::Brittle<Kind>> {
  static auto tie(auto& b) { return std::tie(b.v_); }
};
