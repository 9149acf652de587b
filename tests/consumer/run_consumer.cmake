# Driven by ctest: builds mpp + the consumer in WORK for MODE (find_package | add_subdirectory),
# then runs the consumer. Any failing step fails the test.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}")
  endif()
endfunction()
file(REMOVE_RECURSE ${WORK})
set(gen -G Ninja -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release)
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} -S ${MPP_SOURCE} -B ${WORK}/mpp ${gen} -DCMAKE_INSTALL_PREFIX=${WORK}/install
      -DMPP_BUILD_TESTS=OFF -DMPP_BUILD_BENCH=OFF -DMPP_BUILD_EXAMPLES=OFF -DMPP_BUILD_TOOLS=OFF
      -DMPP_WITH_MPI=OFF)
  run(${CMAKE_COMMAND} --build ${WORK}/mpp)
  run(${CMAKE_COMMAND} --install ${WORK}/mpp)
  run(${CMAKE_COMMAND} -S ${MPP_SOURCE}/tests/consumer -B ${WORK}/consumer ${gen}
      -DCMAKE_PREFIX_PATH=${WORK}/install)
else()
  run(${CMAKE_COMMAND} -S ${MPP_SOURCE}/tests/consumer -B ${WORK}/consumer ${gen}
      -DMPP_CONSUMER_MODE=add_subdirectory -DMPP_SOURCE=${MPP_SOURCE} -DMPP_WITH_MPI=OFF)
endif()
run(${CMAKE_COMMAND} --build ${WORK}/consumer)
run(${WORK}/consumer/consumer)
