# Paged MFA decode attention on CUDA (cuda/paged_attention.h): split-K over the KV blocks plus a combine kernel.
list(APPEND STEPWISE_CUDA_SOURCES cuda/paged_attention.cu)
