# Token sampling on CUDA (cuda/sampling.h): greedy, temperature, top-k, top-p with a counter-based RNG.
list(APPEND STEPWISE_CUDA_SOURCES cuda/sampling.cu)
