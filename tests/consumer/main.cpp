// Builds against the public headers only, then runs a child process.
#include <cstdio>
#include <mpp/mpp.hpp>

int main() {
  mpp::Process p([](int code) { throw mpp::SystemExit{code}; }, 3);
  p.start();
  p.join();
  std::printf("consumer: child exit code %d\n", p.exitcode().value_or(-1000));
  return p.exitcode() == 3 ? 0 : 1;
}
