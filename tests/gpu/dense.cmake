# GPU tests of the dense, loss and optimizer ops (kernels/cuda/{dense,loss,optim}.h) against the CPU reference.
stepwise_gpu_test(test_dense_cuda SOURCES test_dense_cuda.cpp)
stepwise_gpu_test(test_lm_head_loss_cuda SOURCES test_lm_head_loss_cuda.cpp)
stepwise_gpu_test(test_optim_cuda SOURCES test_optim_cuda.cpp)
