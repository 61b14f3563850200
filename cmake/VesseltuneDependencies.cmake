# Every external dependency is found here, once, so that the component CMakeLists only link targets.

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
  set(CMAKE_C_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()

find_package(Torch REQUIRED)
# Open MPI's C++ bindings need libmpi_cxx, which not every machine has; we use the C API only.
add_compile_definitions(OMPI_SKIP_MPICXX=1)
find_package(MPI REQUIRED COMPONENTS C)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(Boost 1.74 REQUIRED COMPONENTS log log_setup thread filesystem)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(Threads REQUIRED)
# Text: PCRE2 (Unicode property classes for the tokenisers' pre-tokenisation regex) and utf8proc (NFC).
# xxHash64: the strong checksums of checkpoints and metrics (HDF5's Fletcher-32 misses 0x0000 <-> 0xFFFF).
find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
find_library(XXHASH_LIBRARY xxhash REQUIRED)
add_library(vesseltune_xxhash INTERFACE)
target_include_directories(vesseltune_xxhash SYSTEM INTERFACE ${XXHASH_INCLUDE_DIR})
target_link_libraries(vesseltune_xxhash INTERFACE ${XXHASH_LIBRARY})
find_path(PCRE2_INCLUDE_DIR pcre2.h REQUIRED)
find_library(PCRE2_LIBRARY pcre2-8 REQUIRED)
find_path(UTF8PROC_INCLUDE_DIR utf8proc.h REQUIRED)
find_library(UTF8PROC_LIBRARY utf8proc REQUIRED)
add_library(vesseltune_unicode INTERFACE)
target_include_directories(vesseltune_unicode SYSTEM INTERFACE ${PCRE2_INCLUDE_DIR} ${UTF8PROC_INCLUDE_DIR})
target_link_libraries(vesseltune_unicode INTERFACE ${PCRE2_LIBRARY} ${UTF8PROC_LIBRARY})
if(VESSELTUNE_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# Torch targets carry their own flags (C++11 ABI); keep them off our C files.
set(VESSELTUNE_TORCH_LIBS ${TORCH_LIBRARIES})

# CUDA + NCCL: the GPU collectives depend on the CUDA runtime and NCCL only, so they compile wherever the
# toolkit is installed, with a CPU-only LibTorch too. Whether LibTorch itself has CUDA is a separate fact
# (VESSELTUNE_TORCH_HAS_CUDA): only then can tensors live on a GPU.
find_package(CUDAToolkit QUIET)
find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include /usr/local/cuda/include)
find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu /usr/local/cuda/lib64)
if(CUDAToolkit_FOUND AND NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
  set(VESSELTUNE_WITH_CUDA ON)
  add_library(vesseltune_nccl INTERFACE)
  target_include_directories(vesseltune_nccl SYSTEM INTERFACE ${NCCL_INCLUDE_DIR})
  target_link_libraries(vesseltune_nccl INTERFACE ${NCCL_LIBRARY} CUDA::cudart)
  message(STATUS "vesseltune: CUDA ${CUDAToolkit_VERSION}, NCCL ${NCCL_LIBRARY}")
else()
  set(VESSELTUNE_WITH_CUDA OFF)
  message(STATUS "vesseltune: no CUDA toolkit or NCCL found; building the CPU (MPI) paths only")
endif()
if(TARGET torch_cuda OR TARGET c10_cuda)
  set(VESSELTUNE_TORCH_HAS_CUDA ON)
else()
  set(VESSELTUNE_TORCH_HAS_CUDA OFF)
endif()
message(STATUS "vesseltune: LibTorch ${Torch_VERSION}, CUDA in LibTorch: ${VESSELTUNE_TORCH_HAS_CUDA}")

# Plots of a run's metrics (vesseltune-report): PLplot with its cairo driver (PNG). Optional: the GPU machine has
# no PLplot, and the trainer does not need it.
find_path(PLPLOT_INCLUDE_DIR plstream.h PATH_SUFFIXES plplot)
find_library(PLPLOT_CXX_LIBRARY plplotcxx)
find_library(PLPLOT_LIBRARY plplot)
if(PLPLOT_INCLUDE_DIR AND PLPLOT_CXX_LIBRARY AND PLPLOT_LIBRARY)
  add_library(vesseltune_plplot INTERFACE)
  target_include_directories(vesseltune_plplot SYSTEM INTERFACE ${PLPLOT_INCLUDE_DIR})
  target_link_libraries(vesseltune_plplot INTERFACE ${PLPLOT_CXX_LIBRARY} ${PLPLOT_LIBRARY})
  message(STATUS "vesseltune: PLplot ${PLPLOT_CXX_LIBRARY}")
else()
  message(STATUS "vesseltune: PLplot (libplplot-dev) not found; vesseltune-report is not built")
endif()
