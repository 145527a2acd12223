# CUDA dense ops (cuda/dense.h): one .cu per op.
list(APPEND STEPWISE_CUDA_SOURCES
  cuda/embedding.cu cuda/rmsnorm.cu cuda/rope.cu cuda/linear.cu cuda/swiglu.cu cuda/add.cu cuda/grid_stride.cuh)
