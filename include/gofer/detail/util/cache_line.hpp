// Cache-line size for padding hot shared fields apart (false sharing).
#pragma once

#include <cstddef>

namespace gofer::detail {

// 64 on x86-64; 64 on most AArch64 cores too (some use 128, but padding to 64
// already separates the fields that matter here).
inline constexpr std::size_t cache_line = 64;

}  // namespace gofer::detail
