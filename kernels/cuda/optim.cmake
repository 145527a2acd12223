# CUDA optimizer ops (cuda/optim.h): AdamW, gradient-norm reductions and scaling, fp32 <-> bf16 conversion.
list(APPEND STEPWISE_CUDA_SOURCES cuda/adamw.cu cuda/reduce.cu cuda/convert.cu)
