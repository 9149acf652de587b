// mpp/mpp.hpp: the whole core of mpp in one include (the MPI backend is <mpp/mpi.hpp>).
#pragma once

#include "mpp/codec.hpp"
#include "mpp/errors.hpp"
#include "mpp/pipe.hpp"
#include "mpp/pool.hpp"
#include "mpp/process.hpp"
#include "mpp/queue.hpp"
#include "mpp/shared.hpp"
#include "mpp/start_method.hpp"
#include "mpp/sync.hpp"
