# Emulator test of the bf16 tensor-core attention backward kernels (kernels/cuda/attention_backward_mma.cuh).
stepwise_emu_test(test_emu_attention_backward SOURCES test_emu_attention_backward.cpp TIMEOUT 120)
