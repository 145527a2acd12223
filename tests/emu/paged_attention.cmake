# The tensor-core paged attention kernel (kernels/cuda/paged_attention_mma.cuh) under the CPU SIMT emulator.
stepwise_emu_test(test_emu_paged_attention SOURCES test_emu_paged_attention.cpp)
