// A Pipe between two processes carrying a user type, and the errors a caller sees.
//
// A struct of public members travels through mpp's codec with no user code (mpp/codec.hpp); the
// same bytes go through encode()/decode() by hand. The child sends a few orders on the pipe and
// closes its end; the parent reads until QueueClosed. A Process target that throws gives the
// parent a RemoteError naming the exception; a bad buffer gives a SerializationError.
#include <cstdio>
#include <mpp/mpp.hpp>
#include <stdexcept>
#include <string>
#include <vector>

struct Order {  // an aggregate: travels as-is
  std::string item;
  int quantity = 0;
  std::vector<double> prices;
};

int main() {
  // codec: a value to bytes and back.
  const Order sample{"spam", 3, {1.5, 2.25}};
  const std::vector<std::byte> bytes = mpp::codec::encode(sample);
  const auto back = mpp::codec::decode<Order>(bytes);
  std::printf("codec: %zu bytes, %s x%d\n", bytes.size(), back.item.c_str(), back.quantity);
  try {
    (void)mpp::codec::decode<Order>(std::span(bytes).first(bytes.size() - 1));  // truncated
    return 1;
  } catch (const mpp::SerializationError& e) {
    std::printf("codec: truncated input: %s\n", e.what());
  }

  // Pipe: the child writes on one end, the parent reads the other.
  auto [reader, writer] = mpp::Pipe<Order>(/*duplex=*/false);
  mpp::Process child([w = writer]() mutable {
    for (int i = 1; i <= 3; ++i) w.send(Order{"eggs", i, std::vector<double>(i, 0.5)});
    w.close();
  });
  child.start();
  writer.close();  // the parent keeps only the reading end
  int total = 0;
  try {
    for (;;) total += reader.recv().quantity;
  } catch (const mpp::QueueClosed&) {
    std::printf("pipe: %d eggs received, the child closed its end\n", total);
  }
  child.join();

  // errors: what escaped a child's target comes back as a RemoteError.
  mpp::Process failing([] { throw std::out_of_range("no such shelf"); });
  failing.start();
  failing.join();
  const std::optional<mpp::RemoteError> error = failing.error();
  std::printf("error: exit code %d, %s\n", failing.exitcode().value_or(-1),
              error ? error->what() : "(none)");
  return total == 6 && sample.prices == back.prices && error &&
                 error->type_name() == "std::out_of_range"
             ? 0
             : 1;
}
