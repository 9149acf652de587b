#include <cstdio>
#include <mpp/mpp.hpp>
#include <string>
#include <vector>

std::string shout(const std::string& word) { return word + "!"; }

int main() {
  mpp::Pool pool(4);  // multiprocessing.Pool(4)
  std::vector<std::string> words{"spam", "eggs", "ham"};
  std::vector<std::string> loud = pool.map(shout, words);  // pool.map(shout, words), in order
  mpp::Process p([&] { std::printf("child sees %zu words\n", loud.size()); });
  p.start();  // multiprocessing.Process(...).start()
  p.join();
  std::printf("%s %s %s, child exit code %d\n", loud[0].c_str(), loud[1].c_str(), loud[2].c_str(),
              p.exitcode().value_or(-1));
  return loud[2] == "ham!" && p.exitcode() == 0 ? 0 : 1;
}
