# GPU tests of the CUDA MoE ops against the CPU references (label gpu; they skip without a device).
stepwise_gpu_test(test_moe_cuda SOURCES test_moe_cuda.cpp test_grouped_linear_cuda.cpp)
