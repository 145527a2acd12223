# GPU tests of the attention family: MFA attention forward/backward, paged decode attention, sampling.
stepwise_gpu_test(test_attention_cuda SOURCES test_attention_cuda.cpp)
stepwise_gpu_test(test_paged_attention_cuda SOURCES test_paged_attention_cuda.cpp)
stepwise_gpu_test(test_sampling_cuda SOURCES test_sampling_cuda.cpp)
