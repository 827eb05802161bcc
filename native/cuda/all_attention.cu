// Build unit for attention forward and backward (see all_small_ops.cu for why files are grouped).
#include "cuda/attention.cu"
#include "cuda/attention_backward.cu"
#include "cuda/attention_mma.cu"
