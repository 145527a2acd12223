// CPU SIMT emulator of CUDA kernels (tests/emu): runs a kernel's own source, compiled by g++ against the shim headers
// in tests/emu/include, over a grid. Blocks run one after another in a shuffled order; a block's threads are
// coroutines resumed in a seeded random order, each until it blocks at __syncthreads or a warp collective (shuffle,
// vote, ldmatrix, mma), which completes when all its lanes have arrived. Dynamic shared memory is fresh per block and
// filled with 0xFF bytes (NaN as float and bf16). Deadlocks, divergent warp collectives and misaligned or misplaced
// ldmatrix / cp.async addresses abort with a message. See tests/emu/README.md.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

namespace emu {

// Seed of the scheduler's random order (blocks and threads). Default: $STEPWISE_EMU_SEED, else 1. Each launch draws
// from one generator, so a test's sequence of launches is reproducible.
void set_seed(uint64_t seed);
uint64_t seed();

// When cp.async copies land. On the GPU a copy may complete at any moment between its issue and the wait that
// covers it, so a kernel must be right both ways: at_wait (a read of the destination before the wait sees the poison
// or stale data), at_issue (the copy lands at once: a prefetch into shared memory other warps still read shows up as
// wrong values there), per_block (the default: each block draws one of the two from the scheduler's generator).
enum class CopyLanding { per_block, at_wait, at_issue };
void set_copy_landing(CopyLanding landing);

// The current block's dynamic shared memory (the launch's dynamic_smem bytes, 16-byte aligned, 0xFF-filled).
unsigned char* dynamic_shared_memory();

namespace detail {
// True when p lies inside a live cudaMalloc / cudaMallocAsync allocation (runtime.cpp).
bool in_device_allocation(const void* p);
// The most dynamic shared memory a launch of `kernel` may ask for (48 KiB unless raised by cudaFuncSetAttribute;
// kernel nullptr: the largest limit set for any kernel).
size_t dynamic_shared_limit(const void* kernel);
// Runs body(ctx) on every thread of the grid (kernel identifies the function for cudaFuncSetAttribute limits).
void run_grid(const void* kernel, dim3 grid, dim3 block, size_t dynamic_smem, void (*body)(void*), void* ctx);

template <class... P> struct KernelCall {
  void (*kernel)(P...);
  std::tuple<std::decay_t<P>...> args;
  static void invoke(void* self) {
    auto* call = static_cast<KernelCall*>(self);
    std::apply(call->kernel, call->args);   // each thread gets its own copies of the parameters
  }
};
}  // namespace detail

// kernel<<<grid, block, dynamic_smem>>>(args...), synchronously. The arguments convert to the kernel's parameter types.
template <class... P, class... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t dynamic_smem, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "emu::launch: wrong number of kernel arguments");
  detail::KernelCall<P...> call{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
  detail::run_grid(reinterpret_cast<const void*>(kernel), grid, block, dynamic_smem, &detail::KernelCall<P...>::invoke,
                   &call);
}

// The form rewrite_launches.cmake gives `kernel<<<grid, block, smem, stream>>>(args...)`:
//   emu::launcher([&](auto... a) { kernel(a...); }, grid, block, smem, stream)(args...)
// Calling the kernel by name inside the lambda deduces a kernel template's arguments from the launch arguments as
// nvcc does. The stream is ignored: every launch runs to completion. (Such a launch is checked against the largest
// dynamic shared-memory limit set by any cudaFuncSetAttribute, since the lambda hides which kernel it calls.)
template <class Body> struct Launcher {
  Body body;
  dim3 grid, block;
  size_t dynamic_smem;
  template <class... A> void operator()(A&&... args) const {
    struct Call {
      const Body* body;
      std::tuple<std::decay_t<A>...> args;
      static void invoke(void* self) {
        auto* call = static_cast<Call*>(self);
        std::apply(*call->body, call->args);
      }
    } call{&body, std::tuple<std::decay_t<A>...>(std::forward<A>(args)...)};
    detail::run_grid(nullptr, grid, block, dynamic_smem, &Call::invoke, &call);
  }
};
template <class Body>
Launcher<Body> launcher(Body body, dim3 grid, dim3 block, size_t dynamic_smem = 0, cudaStream_t stream = nullptr) {
  (void)stream;
  return {body, grid, block, dynamic_smem};
}

}  // namespace emu
