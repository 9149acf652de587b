# Driven by ctest: builds mpp + the consumer in WORK for MODE (find_package | add_subdirectory),
# then runs the consumer. Any failing step fails the test.
cmake_minimum_required(VERSION 3.25)
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}")
  endif()
endfunction()

# The installed headers are whole: every "mpp/..." they include is installed, every installed
# detail/ header is included by another installed header, and mpi.hpp is there only with mpp::mpi.
function(check_installed_headers prefix)
  file(GLOB_RECURSE headers RELATIVE ${prefix}/include ${prefix}/include/mpp/*)
  set(included "")
  foreach(h IN LISTS headers)
    file(STRINGS ${prefix}/include/${h} lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"mpp/")
    foreach(line IN LISTS lines)
      string(REGEX REPLACE ".*\"(mpp/[^\"]+)\".*" "\\1" inc "${line}")
      if(NOT EXISTS ${prefix}/include/${inc})
        message(FATAL_ERROR "installed ${h} includes ${inc}, which is not installed")
      endif()
      list(APPEND included ${inc})
    endforeach()
  endforeach()
  foreach(h IN LISTS headers)
    if(h MATCHES "^mpp/detail/" AND NOT h IN_LIST included)
      message(FATAL_ERROR "installed ${h}, which no installed header includes")
    endif()
  endforeach()
  file(GLOB mpi_export ${prefix}/lib*/cmake/mpp/mppMpiTargets.cmake)
  if(EXISTS ${prefix}/include/mpp/mpi.hpp AND NOT mpi_export)
    message(FATAL_ERROR "mpp/mpi.hpp installed without mpp::mpi")
  endif()
  list(LENGTH headers n)
  message(STATUS "installed headers: ${n}, whole")
endfunction()

file(REMOVE_RECURSE ${WORK})
set(gen -G Ninja -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release)
if(MODE STREQUAL "find_package")
  # Install the library this build tree already built (no second compile of mpp), then build the
  # consumer against that install tree only.
  run(${CMAKE_COMMAND} --install ${BUILD} --prefix ${WORK}/install)
  check_installed_headers(${WORK}/install)
  run(${CMAKE_COMMAND} -S ${MPP_SOURCE}/tests/consumer -B ${WORK}/consumer ${gen}
      -DCMAKE_PREFIX_PATH=${WORK}/install)
else()
  # Fail points on: they must stay inside mpp (the consumer's main.cpp checks).
  run(${CMAKE_COMMAND} -S ${MPP_SOURCE}/tests/consumer -B ${WORK}/consumer ${gen}
      -DMPP_CONSUMER_MODE=add_subdirectory -DMPP_SOURCE=${MPP_SOURCE} -DMPP_WITH_MPI=OFF
      -DMPP_FAILPOINTS=ON)
endif()
run(${CMAKE_COMMAND} --build ${WORK}/consumer)
run(${WORK}/consumer/consumer)
if(MODE STREQUAL "add_subdirectory")
  # A subproject installs nothing unless asked (MPP_INSTALL defaults to OFF there).
  run(${CMAKE_COMMAND} --install ${WORK}/consumer --prefix ${WORK}/install)
  file(GLOB_RECURSE installed ${WORK}/install/*)
  if(installed)
    message(FATAL_ERROR "add_subdirectory(mpp) installed files: ${installed}")
  endif()
endif()
