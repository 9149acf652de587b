// The progress bar of map/imap (PoolOptions::progress).
#pragma once

#include "mpp/pool.hpp"

namespace mpp::detail {

// Draws `p` on stderr: redrawn in place when stderr is a terminal, otherwise only the final state
// as one line. Never throws.
void draw_progress(const PoolProgress& p) noexcept;

}  // namespace mpp::detail
