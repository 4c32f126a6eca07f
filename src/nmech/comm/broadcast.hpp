#pragma once
// Rank 0's text on every rank of `comm` (an error, a verdict, an id; "" for none), so that all
// ranks throw or proceed together. Unwatched: for set-up code that every rank runs before a
// watchdog exists. Torch-free.
#include <mpi.h>

#include <string>

namespace nmech::comm {

inline std::string broadcast_text(MPI_Comm comm, std::string text) {
  int n = static_cast<int>(text.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, comm);
  text.resize(static_cast<size_t>(n));
  if (n > 0) MPI_Bcast(text.data(), n, MPI_CHAR, 0, comm);
  return text;
}

}  // namespace nmech::comm
