// Host-side CUDA runtime helpers shared by the ops, the tests and the benchmarks: device presence, error checks that
// throw (never abort), raw allocation and copies, and a small owning buffer. Compiles without nvcc.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace stepwise::cuda {

using bf16 = __nv_bfloat16;

// Number of usable CUDA devices; 0 when there is no driver or no device (never throws).
int device_count();
// Streaming multiprocessors of the current device (sizes grids: persistent kernels, split counts, reductions).
int multiprocessor_count();
// Opts `kernel` (a __global__ function) in to `dynamic_smem` bytes of dynamic shared memory on the current device and
// returns how many of its blocks of `threads` threads fit on one SM (at least 1). Done once per (kernel, device,
// threads, bytes) and cached, so launchers call it on every launch. Throws std::invalid_argument naming `op` when the
// device cannot give `dynamic_smem`.
int prepare_launch(const void* kernel, int threads, size_t dynamic_smem, const char* op);
template <class Kernel>
int prepare_launch(Kernel* kernel, int threads, size_t dynamic_smem, const char* op) {
  return prepare_launch(reinterpret_cast<const void*>(kernel), threads, dynamic_smem, op);
}
// Throws std::runtime_error naming `what`, the file:line and CUDA's message when e != cudaSuccess.
void check(cudaError_t e, const char* what, const char* file, int line);
#define STEPWISE_CUDA_CHECK(expr) ::stepwise::cuda::check((expr), #expr, __FILE__, __LINE__)

void* device_alloc(size_t bytes);   // throws on failure; 0 bytes gives nullptr
void device_free(void* p) noexcept;
void copy_to_device(void* dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const void* src, size_t bytes);
void device_synchronize();

// An owning device array of n elements of T (uninitialised).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(int64_t n) : p_(static_cast<T*>(device_alloc(sizeof(T) * static_cast<size_t>(n)))), n_(n) {}
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(static_cast<int64_t>(host.size())) { upload(host); }
  ~DeviceBuffer() { device_free(p_); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_), std::swap(n_, o.n_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* data() { return p_; }
  const T* data() const { return p_; }
  int64_t size() const { return n_; }
  void upload(const std::vector<T>& host) { copy_to_device(p_, host.data(), sizeof(T) * host.size()); }
  std::vector<T> download() const {
    std::vector<T> host(static_cast<size_t>(n_));
    copy_to_host(host.data(), p_, sizeof(T) * host.size());
    return host;
  }

 private:
  T* p_ = nullptr;
  int64_t n_ = 0;
};

}  // namespace stepwise::cuda
