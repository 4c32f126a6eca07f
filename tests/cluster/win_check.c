/* One-sided windows across nodes: MPI_Win_allocate + one MPI_Fetch_and_op under a lock,
   under MPI_THREAD_MULTIPLE, as nmech's work queue and heartbeat table do. Prints OK per rank. */
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int provided, rank, one = 1, old = -1; int *base; MPI_Win win; char host[64];
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank); gethostname(host, sizeof host);
    MPI_Win_allocate(sizeof(int), sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win);
    *base = 0; MPI_Barrier(MPI_COMM_WORLD);
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win);
    MPI_Fetch_and_op(&one, &old, MPI_INT, 0, 0, MPI_SUM, win);
    MPI_Win_unlock(0, win); MPI_Barrier(MPI_COMM_WORLD);
    printf("OK rank %d on %s: thread level %d (multiple=%d), fetched %d\n", rank, host, provided, MPI_THREAD_MULTIPLE, old);
    MPI_Win_free(&win); MPI_Finalize(); return 0;
}
