#include "nmech/util/allocator.hpp"

#include <malloc.h>

namespace nmech::util {

void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);  // serve big blocks from the heap, reused step to step
  mallopt(M_TRIM_THRESHOLD, 1 << 30);  // and do not trim the heap back after each step
}

}  // namespace nmech::util
