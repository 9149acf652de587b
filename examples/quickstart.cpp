#include <mpp/mpp.hpp>

#include <cstdio>
#include <string>

void greet(const std::string& who) { std::printf("hello from a child process, %s\n", who.c_str()); }

int main() {
  mpp::Process p(greet, std::string("world"));  // multiprocessing.Process(target=greet, args=[...])
  p.start();
  p.join();
  return p.exitcode() == 0 ? 0 : 1;  // 0; -9 if it had been SIGKILLed, like Python
}
