// Builds against the public headers only, then runs a child process.
#include <cstdio>
#include <mpp/mpp.hpp>

// Fail points are private to mpp and its tests (the build under test compiles them in).
#ifdef MPP_FAILPOINTS
#error "MPP_FAILPOINTS reached a consumer of mpp::mpp"
#endif

int main() {
  mpp::Process p([](int code) { throw mpp::SystemExit{code}; }, 3);
  p.start();
  p.join();
  std::printf("consumer: child exit code %d\n", p.exitcode().value_or(-1000));
  return p.exitcode() == 3 ? 0 : 1;
}
