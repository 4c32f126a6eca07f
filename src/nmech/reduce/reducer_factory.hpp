#pragma once
// Builds a group's reducer from its settings: "single" (MpiReducer), "buckets" or "overlap"
// (BucketReducer over a bucket transport). The transports this build has are one table
// (reducer_factory.cpp), each row saying what memory the transport reads.
#include <memory>
#include <string>
#include <vector>

#include "nmech/comm/comm.hpp"
#include "nmech/config/reducer_settings.hpp"
#include "nmech/reduce/reducer.hpp"

namespace nmech::reduce {

using config::ReducerSettings;

std::unique_ptr<Reducer> make_reducer(comm::Comm& group, const ReducerSettings& s);
// The backends this build has, e.g. "mpi" or "mpi, nccl".
std::string built_backends();
// The built transports that sum gradients in device (GPU) memory, or in host memory, in table
// order; backend_for is the first of them ("" if none), the one a sweep uses.
std::vector<std::string> backends_for(bool device_memory);
std::string backend_for(bool device_memory);

}  // namespace nmech::reduce
