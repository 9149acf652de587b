# libbacktrace as GCC ships it (Debian's libgcc-<N>-dev, installed with g++): names the frames of
# crash stacks (src/sys/crash_stack.cpp). Its header and static library live in GCC's own
# directory, which g++ searches by default and clang does not, so both are looked up there.
# Without it mpp still builds; crash stacks are then raw addresses.
function(mpp_use_libbacktrace target)
  file(GLOB _mpp_gcc_dirs LIST_DIRECTORIES true
       /usr/lib/gcc/${CMAKE_LIBRARY_ARCHITECTURE}/* /usr/lib/gcc/*-linux-gnu/*)
  find_path(MPP_LIBBACKTRACE_INCLUDE_DIR backtrace.h PATHS ${_mpp_gcc_dirs} PATH_SUFFIXES include
            NO_DEFAULT_PATH)
  find_library(MPP_LIBBACKTRACE_LIBRARY NAMES libbacktrace.a backtrace PATHS ${_mpp_gcc_dirs}
               NO_DEFAULT_PATH)
  if(MPP_LIBBACKTRACE_INCLUDE_DIR AND MPP_LIBBACKTRACE_LIBRARY)
    target_include_directories(${target} SYSTEM PRIVATE ${MPP_LIBBACKTRACE_INCLUDE_DIR})
    target_link_libraries(${target} PRIVATE ${MPP_LIBBACKTRACE_LIBRARY})
    set_property(SOURCE ${PROJECT_SOURCE_DIR}/src/sys/crash_stack.cpp APPEND PROPERTY
                 COMPILE_DEFINITIONS MPP_HAVE_LIBBACKTRACE=1)
  else()
    message(STATUS "mpp: libbacktrace not found; crash stacks will be raw addresses")
  endif()
endfunction()
