// sys/failpoint.hpp: fault-injection points for the chaos tests.
//
// MPP_FAILPOINT("queue.put.after_claim") marks a place where a test build can make the current
// process die on purpose (SIGKILL or _exit) on the N-th pass, to prove that no other process hangs,
// loses or duplicates anything when a peer dies exactly there. In builds without MPP_FAILPOINTS
// (release builds, installed packages) the macro expands to nothing.
//
// Arming: programmatically (arm()) or through the environment variable MPP_FAILPOINT read at the
// first hit: "NAME:N:ACTION" with ACTION kill (SIGKILL) or exit (_exit(77)), e.g.
// MPP_FAILPOINT=pool.worker.before_result:3:kill. Counters are per process and start at zero in
// every process (a fork resets them), so "the N-th pass in a worker" means what it says.
// A failpoint never throws and is async-signal-safe once armed.
#pragma once

namespace mpp::detail::failpoint {

enum class Action { none, kill, exit };

// Arms `name` (a string literal that outlives the arming) to fire on its `nth` pass (1-based) in
// this process and in children forked after this call.
void arm(const char* name, int nth, Action action) noexcept;
void disarm() noexcept;
// Called by the macro; fires if armed for `name` and this is the armed pass.
void hit(const char* name) noexcept;
// Number of times `name` was passed in this process since the last arm() (for tests that check
// a failpoint is reachable).
[[nodiscard]] int passes(const char* name) noexcept;

}  // namespace mpp::detail::failpoint

#if defined(MPP_FAILPOINTS) && MPP_FAILPOINTS
#define MPP_FAILPOINT(name) ::mpp::detail::failpoint::hit(name)
#else
#define MPP_FAILPOINT(name) static_cast<void>(0)
#endif
