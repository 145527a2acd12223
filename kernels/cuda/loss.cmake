# CUDA fused LM head + cross-entropy (cuda/loss.h).
list(APPEND STEPWISE_CUDA_SOURCES cuda/lm_head_loss.cu)
