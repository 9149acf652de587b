# mpp_mpirun(<test name> <ranks> <command...>): a ctest test running the command under mpirun,
# for the MPI tests (tests/mpi) and the MPI example (examples/mpi). MPP_MPIRUN_ENV is the
# environment those tests give mpirun.
#
# Root and oversubscription are the tests' business, never the library's: CI runs as root on a
# machine with fewer cores than ranks. Open MPI reads these from the environment of mpirun.
#
# odls_base_sigkill_timeout=2: when a rank dies, mpirun sends the others SIGTERM, waits, then
# SIGKILL. With the default 1 s, rank 0's "job killed while rank N was running task T" report was
# missing in 6-7 of 20 jobs while two CPU hogs ran (rank 0 was SIGKILLed before its SIGTERM
# handler ran; the wait seems cut short when another rank's exit interrupts it); with 2, in 0 of
# 12. docs/mpi.md gives users the same advice.
set(MPP_MPIRUN_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
    OMPI_MCA_odls_base_sigkill_timeout=2)
if(MPP_SANITIZE)
  # Open MPI's own start-up allocations are never freed: suppress leaks allocated inside Open MPI
  # (full stacks and plugins kept loaded, so that the suppressions can see where); leaks of our
  # code are still reported.
  list(APPEND MPP_MPIRUN_ENV
       LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/mpi/lsan.supp:fast_unwind_on_malloc=0
       ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0
       OMPI_MCA_mca_base_component_disable_dlclose=1)
endif()

function(mpp_mpirun name ranks)
  add_test(NAME ${name}
           COMMAND ${CMAKE_COMMAND} -E env ${MPP_MPIRUN_ENV}
                   ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks} ${MPIEXEC_PREFLAGS}
                   ${ARGN} ${MPIEXEC_POSTFLAGS})
  set_tests_properties(${name} PROPERTIES TIMEOUT 180 PROCESSORS 2)
endfunction()
