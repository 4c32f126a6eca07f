#pragma once
// The MPI bucket transport: each bucket has its own duplicate of the group communicator, so
// several buckets are in flight at once and a rank that leaves one out cannot pair its next
// bucket with another rank's missing one (the watchdog names it instead). Non-blocking
// MPI_Iallreduce in place; progress() tests what is in flight, since Open MPI advances
// non-blocking collectives only inside MPI calls (the reducer calls it from gradient hooks).
#include <memory>
#include <vector>

#include "nmech/dist/bucket_backend.hpp"
#include "nmech/dist/comm.hpp"

namespace nmech::dist {

class MpiBuckets : public BucketBackend {
 public:
  explicit MpiBuckets(Comm& group) : group_(group) {}
  ~MpiBuckets() override;
  const char* name() const override { return "mpi"; }
  void reserve(int buckets) override;
  void start(int b, void* data, std::size_t count, ElementType type, const std::string& what) override;
  void progress() override;
  void wait(int b) override;

 private:
  struct Channel {
    MPI_Comm mpi = MPI_COMM_NULL;
    std::unique_ptr<Comm> comm;
    MPI_Request req = MPI_REQUEST_NULL;
    std::string what;
  };
  Comm& group_;
  std::vector<Channel> channels_;
};

}  // namespace nmech::dist
