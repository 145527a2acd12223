# The serving step on CUDA (serve/cuda/cuda_step_model.h) and the engine with device cuda against the CPU (label gpu).
stepwise_gpu_test(test_cuda_step_model SOURCES test_cuda_step_model.cpp LIBS stepwise_serve)
