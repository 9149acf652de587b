// mpp/mpp.hpp: the whole core of mpp in one include (the MPI backend is <mpp/mpi.hpp>).
#pragma once

#include "mpp/errors.hpp"
#include "mpp/process.hpp"
