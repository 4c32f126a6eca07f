#pragma once
// The "scale" of sum then scale (reducer.hpp): each element of a summed bucket divided by the
// divisor in the element's own type, bitwise what one IEEE division per element (LibTorch's
// div_) gives. Torch-free, so a transport can run it on its communication thread
// right after the bucket's all-reduce, while backward continues on the main thread.
#include <cstddef>

#include "nmech/comm/bucket_backend.hpp"

namespace nmech::comm {

void divide_in_place(void* data, std::size_t count, ElementType type, double divisor);

}  // namespace nmech::comm
