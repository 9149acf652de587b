#!/usr/bin/env bash
# The wiki Pool example on the same MPI ranks: mpp::mpi::Pool (examples/mpi/pseudowords_mpi)
# against mpi4py.futures.MPIPoolExecutor (bench/mpi/pseudowords_mpi4py.py, Debian python3-mpi4py).
# Usage: bench/mpi/bench_mpi_wiki.sh BUILD_DIR [ranks=3] [words_per_letter=100000] [repeats=3]
# Prints each run's time (pool start to all results on rank 0) and the ratio of the medians.
set -euo pipefail
build=${1:?build directory}
ranks=${2:-3}
words=${3:-100000}
reps=${4:-3}
here=$(cd "$(dirname "$0")" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
ours=() theirs=()
for ((i = 0; i < reps; i++)); do
  t=$(mpirun -n "$ranks" "$build/examples/mpi/pseudowords_mpi" "$words" | sed -n 's/.*, \([0-9.]*\) s with.*/\1/p')
  ours+=("$t")
  t=$(mpirun -n "$ranks" /usr/bin/python3 -m mpi4py.futures "$here/pseudowords_mpi4py.py" "$words" |
      sed -n 's/.*, \([0-9.]*\) s with.*/\1/p')
  theirs+=("$t")
  echo "run $i: mpp::mpi::Pool ${ours[-1]} s   mpi4py.futures ${theirs[-1]} s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_ours=$(median "${ours[@]}")
m_theirs=$(median "${theirs[@]}")
echo "wiki Pool example, $ranks ranks ($((ranks - 1)) workers), $words words per letter:"
echo "  mpp::mpi::Pool median ${m_ours} s, mpi4py.futures median ${m_theirs} s"
awk -v a="$m_theirs" -v b="$m_ours" 'BEGIN {printf "  mpp::mpi::Pool is %.1fx faster (target >= 50x)\n", a / b}'
