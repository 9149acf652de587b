#!/usr/bin/env bash
# Installs the Debian packages mpp's build, tests, demo and benchmarks need, when missing.
# Usage: scripts/deps.sh [build|test|bench|docs|package]. As non-root, prints the apt-get line
# instead.
set -euo pipefail
what=${1:-test}
pkgs=(cmake ninja-build g++ make pkg-config libgtest-dev libgmock-dev libcli11-dev)
case "$what" in
  test)  pkgs+=(clang-14 libclang-rt-14-dev openmpi-bin libopenmpi-dev iproute2 python3
                doxygen python3-clang-14 dpkg-dev) ;;  # the last three: API docs, .deb test
  bench) pkgs+=(libbenchmark-dev libcereal-dev libboost-dev libtbb-dev python3 python3-mpi4py
                openmpi-bin libopenmpi-dev gnuplot-nox) ;;
  docs)  pkgs+=(doxygen python3-clang-14 python3) ;;  # scripts/docs.sh (`make docs`)
  package) pkgs+=(dpkg-dev libopenmpi-dev) ;;  # `make package`: dpkg-shlibdeps, the -mpi pair
  build) ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "mpp: missing Debian packages; run as root:" >&2
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "mpp: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/apt/periodic/update-success-stamp
if [ ! -d /var/lib/apt/lists ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ] \
   || ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
