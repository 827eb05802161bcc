# The CUDA backend, built into the same addon when nvcc is found (included from the top-level CMakeLists.txt
# after the addon target exists). Without nvcc the addon still builds: native/addon/cuda_ops.cc then exports
# a `cuda` object whose probe says why CUDA is absent (LABOR_CUDA_ABSENT_REASON).
#
# Switches: -DLABOR_CUDA=OFF skips CUDA even where nvcc exists (cmake-js: --CDLABOR_CUDA=OFF);
# -DCMAKE_CUDA_ARCHITECTURES=... overrides the default "80-real;90a-real;90-virtual" (sm_80 SASS, which also runs
# on 8.6/8.9; sm_90a SASS for Hopper, the arch-specific target that wgmma and setmaxnreg need, which runs on
# compute 9.0 only; and compute_90 PTX that newer GPUs JIT-compile, where the wgmma kernel is empty and unused).

option(LABOR_CUDA "Build the CUDA backend when nvcc is found" ON)

# One file per op family; nvcc compiles them in three units (all_*.cu include the others) because each nvcc
# run has a large fixed cost.
set(LABOR_CUDA_SOURCES
  native/cuda/matmul.cu
  native/cuda/all_attention.cu     # attention.cu, attention_backward.cu
  native/cuda/all_small_ops.cu     # context, embedding, rmsnorm, rope, elementwise, softmax, optimizer
)

set(LABOR_CUDA_ABSENT_REASON "")
if(NOT LABOR_CUDA)
  set(LABOR_CUDA_ABSENT_REASON "LABOR_CUDA=OFF was set")
else()
  # nvcc is often installed outside PATH; look in the usual places before giving up.
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    find_program(LABOR_NVCC nvcc HINTS ENV CUDA_HOME ENV CUDA_PATH PATH_SUFFIXES bin
      PATHS /usr/local/cuda/bin /usr/local/cuda /opt/cuda/bin)
    if(LABOR_NVCC)
      set(CMAKE_CUDA_COMPILER ${LABOR_NVCC})
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    set(LABOR_CUDA_ABSENT_REASON "nvcc was not found (install the CUDA toolkit, then npm run build:native)")
  endif()
endif()

if(LABOR_CUDA_ABSENT_REASON STREQUAL "")
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80-real 90a-real 90-virtual)
  endif()
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)

  # Kernels in their own static library so the addon's host warning flags don't reach nvcc.
  add_library(labor_cuda STATIC ${LABOR_CUDA_SOURCES})
  target_include_directories(labor_cuda PRIVATE ${CMAKE_SOURCE_DIR}/native)
  target_compile_options(labor_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-O3 --expt-relaxed-constexpr -Xcompiler=-fPIC>)
  set_target_properties(labor_cuda PROPERTIES POSITION_INDEPENDENT_CODE ON CUDA_RUNTIME_LIBRARY Static)

  # The static runtime loads libcuda.so only when first called, so the addon loads on machines without an
  # NVIDIA driver; the probe (cudaGetDeviceCount) then reports why.
  target_compile_definitions(${PROJECT_NAME} PRIVATE LABOR_HAVE_CUDA=1)
  target_include_directories(${PROJECT_NAME} PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
  target_link_libraries(${PROJECT_NAME} PRIVATE labor_cuda CUDA::cudart_static)
  string(REPLACE ";" "," LABOR_CUDA_ARCH_LIST "${CMAKE_CUDA_ARCHITECTURES}")
  message(STATUS "labor-llm: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
else()
  set(LABOR_CUDA_ARCH_LIST "")
  message(STATUS "labor-llm: CUDA backend OFF: ${LABOR_CUDA_ABSENT_REASON}")
endif()

# What the build decided, for the addon's probe (native/addon/cuda_ops.cc).
configure_file(${CMAKE_SOURCE_DIR}/native/cuda/build_config.h.in ${CMAKE_BINARY_DIR}/labor_cuda_build_config.h @ONLY)
target_include_directories(${PROJECT_NAME} PRIVATE ${CMAKE_BINARY_DIR})
