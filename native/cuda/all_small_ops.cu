// Build unit for the small op families: every nvcc run pays a large fixed cost (CUDA headers, host pass, two
// architectures), so these files are compiled together (a hand-made unity build; CMake's UNITY_BUILD does
// not cover CUDA before 3.31). Each file keeps its own anonymous namespace with distinct names.
#include "cuda/context.cu"
#include "cuda/embedding.cu"
#include "cuda/rmsnorm.cu"
#include "cuda/rope.cu"
#include "cuda/elementwise.cu"
#include "cuda/softmax.cu"
#include "cuda/optimizer.cu"
