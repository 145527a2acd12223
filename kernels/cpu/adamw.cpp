// Placeholder: implemented by the kernels work in progress (see kernels/ops.h).
