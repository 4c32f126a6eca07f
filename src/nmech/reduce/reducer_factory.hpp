#pragma once
// Builds a group's reducer from its settings: "single" (MpiReducer), "buckets" or "overlap"
// (BucketReducer over a bucket transport of transports.hpp's table).
#include <memory>
#include <string>

#include "nmech/comm/comm.hpp"
#include "nmech/config/reducer_settings.hpp"
#include "nmech/reduce/reducer.hpp"
#include "nmech/reduce/transports.hpp"

namespace nmech::reduce {

using config::ReducerSettings;

std::unique_ptr<Reducer> make_reducer(comm::Comm& group, const ReducerSettings& s);

}  // namespace nmech::reduce
