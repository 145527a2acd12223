# MFA attention on CUDA: forward and backward (cuda/attention.h); shared warp tile code in attention_tile.cuh.
list(APPEND STEPWISE_CUDA_SOURCES cuda/attention_forward.cu cuda/attention_backward.cu)
