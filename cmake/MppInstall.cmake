# mpp's install rules (MPP_INSTALL, on for the top-level project): headers, libraries, the CMake
# package (find_package(mpp): mpp::mpp, and mpp::mpi when it was built) and the pkg-config files
# (mpp.pc, mpp-mpi.pc) next to it, each in a CPack component:
#   runtime      libmpp.so.X (shared builds)        -> libmppX     (Debian package)
#   devel        headers, libmpp.so / libmpp.a, CMake and pkg-config files -> libmpp-dev
#   mpi_runtime  libmpp_mpi.so.X                    -> libmpp-mpiX
#   mpi_devel    mpi headers, libmpp_mpi.so / .a, mppMpiTargets.cmake, mpp-mpi.pc -> libmpp-mpi-dev
# Every destination is relative to the install prefix (GNUInstallDirs is included before any of
# them is computed); tests/consumer checks that `cmake --install` writes nothing outside it.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(_mpp_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/mpp)
set(_mpp_pc_dir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

function(_mpp_install_headers component)
  foreach(_h IN LISTS ARGN)
    get_filename_component(_dir ${_h} DIRECTORY)
    install(FILES ${PROJECT_SOURCE_DIR}/include/mpp/${_h}
            DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mpp/${_dir} COMPONENT ${component})
  endforeach()
endfunction()

# A library: the shared object in the runtime component, its unversioned link name and the static
# archive in the devel one.
function(_mpp_install_library target export runtime devel)
  install(TARGETS ${target} EXPORT ${export}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT ${runtime}
                  NAMELINK_COMPONENT ${devel}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT ${devel})
  install(EXPORT ${export} NAMESPACE mpp:: DESTINATION ${_mpp_cmake_dir} COMPONENT ${devel})
endfunction()

# pkg-config: relocatable (prefix from ${pcfiledir}), so that the files work from a DESTDIR, a
# `dpkg -x` root or a moved prefix as well as from the prefix they were installed to. A static
# library lists what it links itself in Libs (a plain `pkg-config --libs` must link it); a shared
# one needs nothing more than -lmpp.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(MPP_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  string(REGEX REPLACE "[^/]+" ".." _up "${_mpp_pc_dir}")
  set(MPP_PC_PREFIX "\${pcfiledir}/${_up}")
endif()
set(MPP_PC_LIBS "")
if(NOT BUILD_SHARED_LIBS AND MPP_LIBBACKTRACE_LIBRARY AND MPP_LIBBACKTRACE_INCLUDE_DIR)
  set(MPP_PC_LIBS " ${MPP_LIBBACKTRACE_LIBRARY}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/mpp.pc.in ${PROJECT_BINARY_DIR}/mpp.pc @ONLY)

_mpp_install_headers(devel ${MPP_HEADERS})
_mpp_install_library(mpp mppTargets runtime devel)
install(FILES ${PROJECT_BINARY_DIR}/mpp.pc DESTINATION ${_mpp_pc_dir} COMPONENT devel)
if(TARGET mpp_mpi)
  # A static libmpp_mpi.a also needs the MPI libraries on the link line (a shared one carries them).
  set(MPP_PC_MPI_LIBS "")
  if(NOT BUILD_SHARED_LIBS)
    list(JOIN MPI_CXX_LIBRARIES " " _libs)
    set(MPP_PC_MPI_LIBS " ${_libs}")
  endif()
  configure_file(${PROJECT_SOURCE_DIR}/cmake/mpp-mpi.pc.in ${PROJECT_BINARY_DIR}/mpp-mpi.pc @ONLY)
  _mpp_install_headers(mpi_devel ${MPP_MPI_HEADERS})
  _mpp_install_library(mpp_mpi mppMpiTargets mpi_runtime mpi_devel)
  install(FILES ${PROJECT_BINARY_DIR}/mpp-mpi.pc DESTINATION ${_mpp_pc_dir} COMPONENT mpi_devel)
endif()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mppConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/mppConfig.cmake
                              INSTALL_DESTINATION ${_mpp_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mppConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mppConfig.cmake ${PROJECT_BINARY_DIR}/mppConfigVersion.cmake
        DESTINATION ${_mpp_cmake_dir} COMPONENT devel)

if(PROJECT_IS_TOP_LEVEL)
  include(${PROJECT_SOURCE_DIR}/cmake/MppPackage.cmake)
endif()
