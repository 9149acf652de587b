// Workloads whose mpp component has not landed yet report so instead of pretending.
#include "demo.hpp"

namespace demo {
std::vector<Row> run_queue(const Options&) {
  Row r;
  r.workload = "queue";
  r.variant = "(mpp::Queue not built yet)";
  return {r};
}
std::vector<Row> run_pool(const Options&) {
  Row r;
  r.workload = "pool";
  r.variant = "(mpp::Pool not built yet)";
  return {r};
}
}  // namespace demo
