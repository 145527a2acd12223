# The Step-3 training model on CUDA against the CPU model (label gpu; skips without a device).
stepwise_gpu_test(test_step3_cuda_model SOURCES test_step3_cuda_model.cpp LIBS stepwise_model_cuda stepwise_model stepwise_train)
