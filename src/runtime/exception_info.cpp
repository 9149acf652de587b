// mpp/detail/exception_info.hpp: the type and message of the exception in flight, for RemoteError.
#include "mpp/detail/exception_info.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

#include "sys/demangle.hpp"

namespace mpp::detail {

ExceptionInfo describe_current_exception() noexcept {
  try {
    ExceptionInfo info;
    const std::type_info* type = abi::__cxa_current_exception_type();
    info.type_name = type != nullptr ? sys::demangle(type->name()) : "unknown exception";
    try {
      throw;
    } catch (const std::exception& e) {
      info.message = e.what();
    } catch (const std::string& s) {
      info.message = s;
    } catch (const char* s) {
      info.message = s != nullptr ? s : "";
    } catch (int v) {
      info.message = std::to_string(v);
    } catch (long v) {
      info.message = std::to_string(v);
    } catch (...) {
    }
    return info;
  } catch (...) {
    return ExceptionInfo{"unknown exception", ""};
  }
}

}  // namespace mpp::detail
