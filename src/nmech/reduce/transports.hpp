#pragma once
// The bucket transports this build has: one table (transports.cpp), a row per transport saying
// what memory it reads, as Horovod keeps its backends behind one interface. The reducer factory,
// the engine and the checks (tests/mpi/reducer_check.cpp over the host ones,
// tests/gpu/transport_check.cpp over the device ones) choose through it; nothing compares names.
// Torch-free declarations.
#include <memory>
#include <string>
#include <vector>

#include "nmech/comm/bucket_backend.hpp"
#include "nmech/comm/comm.hpp"

namespace nmech::reduce {

// The transports this build has, e.g. "mpi" or "mpi, nccl".
std::string built_backends();
// The built transports that sum gradients in device (GPU) memory, or in host memory, in table
// order; backend_for is the first of them ("" if none), the one a sweep uses.
std::vector<std::string> backends_for(bool device_memory);
std::string backend_for(bool device_memory);
// The transport `name` over `group` (a device one on GPU `gpu`, −1: the rank's local GPU);
// std::invalid_argument naming the built ones if this build has no such transport.
std::unique_ptr<comm::BucketBackend> make_backend(const std::string& name, comm::Comm& group, int gpu);

}  // namespace nmech::reduce
