#pragma once
namespace nmech::util {
// Keeps glibc from returning large activation buffers to the kernel after every step: without
// it each step re-faults tens of MB of fresh pages (measured: ~40% of a float64 step in the
// kernel). Call once at program start.
void keep_freed_memory();
}  // namespace nmech::util
