// The host runtime of the emulator's shim headers (cuda_runtime_api.h): one emulated H200 whose "device" memory is
// host memory (new allocations are filled with 0xFF bytes, NaN as float and bf16, so reads of unwritten device
// memory poison results), kernels and copies that run when enqueued, and the kernel attributes. Asynchronous copies
// between device memory and pinned host memory (cudaMallocHost) complete for the host only at a synchronisation
// that covers them (the stream's or device's, an event recorded after them, or a call that synchronises the device):
// until then a device-to-host copy's destination holds 0xFF bytes, and a host-to-device copy's source must not
// change (checked at completion), so a host that reads results or refills staging too early is caught.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "emulator.h"

struct CUstream_st {
  unsigned flags = 0;
};
struct CUevent_st {
  cudaStream_t stream = nullptr;   // of the last record
  uint64_t ticket = 0;             // the last copy enqueued before the record (0: nothing to wait for)
};

namespace {

constexpr int kMultiprocessors = 132;
constexpr int kMaxThreadsPerBlock = 1024;
constexpr int kMaxThreadsPerMultiprocessor = 2048;
constexpr size_t kDefaultSharedPerBlock = 48 * 1024;
constexpr size_t kOptinSharedPerBlock = 227 * 1024;
constexpr size_t kSharedPerMultiprocessor = 228 * 1024;

std::map<uintptr_t, size_t> g_allocations;   // base -> bytes
std::map<const void*, size_t> g_kernel_shared_limit;
cudaError_t g_last_error = cudaSuccess;

// ---- asynchronous copies with pinned host memory, not yet complete for the host
std::map<uintptr_t, size_t> g_pinned;   // cudaMallocHost: base -> bytes
struct PendingCopy {
  uint64_t ticket;
  cudaStream_t stream;
  bool to_host;                         // device-to-host: deliver `bytes` to `host`; else `host` must still hold them
  unsigned char* host;
  std::vector<unsigned char> bytes;
};
std::vector<PendingCopy> g_pending;     // in enqueue order
uint64_t g_tickets = 0;
std::recursive_mutex g_mutex;           // an engine may drive the device from its own thread

bool in_pinned(const void* p, size_t bytes) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  auto it = g_pinned.upper_bound(a);
  if (it == g_pinned.begin()) return false;
  --it;
  return a + bytes <= it->first + it->second;
}

[[noreturn]] void fatal(const char* what, const PendingCopy& c) {
  std::fprintf(stderr,
               "emulator: %s: host memory %p (%zu bytes) was rewritten while a cudaMemcpyAsync from it to the device "
               "was still pending (no stream, event or device synchronisation between the copy and the write)\n",
               what, static_cast<void*>(c.host), c.bytes.size());
  std::abort();
}

void complete(PendingCopy& c, const char* at) {
  if (c.to_host)
    std::memcpy(c.host, c.bytes.data(), c.bytes.size());
  else if (std::memcmp(c.host, c.bytes.data(), c.bytes.size()) != 0)
    fatal(at, c);
}

// Completes (in enqueue order) the pending copies `covered` selects.
template <class Covered> void complete_where(Covered covered, const char* at) {
  std::vector<PendingCopy> left;
  for (PendingCopy& c : g_pending) {
    if (covered(c))
      complete(c, at);
    else
      left.push_back(std::move(c));
  }
  g_pending = std::move(left);
}
void complete_all(const char* at) {
  complete_where([](const PendingCopy&) { return true; }, at);
}
// The legacy default stream (nullptr) synchronises with every stream not created cudaStreamNonBlocking.
bool legacy_ordered(cudaStream_t s) { return s == nullptr || (s->flags & cudaStreamNonBlocking) == 0; }
void complete_stream(cudaStream_t s, uint64_t up_to, const char* at) {
  complete_where([&](const PendingCopy& c) {
    return c.ticket <= up_to && (c.stream == s || (s == nullptr && legacy_ordered(c.stream)));
  }, at);
}

cudaError_t fail(cudaError_t e) {
  g_last_error = e;
  return e;
}

}  // namespace

namespace emu::detail {
bool in_device_allocation(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  auto it = g_allocations.upper_bound(a);
  if (it == g_allocations.begin()) return false;
  --it;
  return a < it->first + it->second;
}
size_t dynamic_shared_limit(const void* kernel) {
  if (kernel == nullptr) {
    size_t limit = kDefaultSharedPerBlock;
    for (const auto& [k, bytes] : g_kernel_shared_limit) limit = std::max(limit, bytes);
    return limit;
  }
  const auto it = g_kernel_shared_limit.find(kernel);
  return it == g_kernel_shared_limit.end() ? kDefaultSharedPerBlock : std::max(kDefaultSharedPerBlock, it->second);
}
}  // namespace emu::detail

cudaError_t cudaGetLastError() {
  const cudaError_t e = g_last_error;
  g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return g_last_error; }

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = kMaxThreadsPerBlock; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(kDefaultSharedPerBlock); return cudaSuccess;
    case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = kMultiprocessors; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = static_cast<int>(kSharedPerMultiprocessor); return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = kMaxThreadsPerMultiprocessor; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(kOptinSharedPerBlock); return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue);
}
cudaError_t cudaDeviceSynchronize() {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  complete_all("cudaDeviceSynchronize");
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  *p = nullptr;
  if (bytes == 0) return cudaSuccess;
  // Exactly `bytes` (256-byte aligned like cudaMalloc), so an AddressSanitizer build catches reads past the end.
  void* block = nullptr;
  if (posix_memalign(&block, 256, bytes) != 0) return fail(cudaErrorMemoryAllocation);
  std::memset(block, 0xff, bytes);
  g_allocations[reinterpret_cast<uintptr_t>(block)] = bytes;
  *p = block;
  return cudaSuccess;
}
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) { return cudaMalloc(p, bytes); }
cudaError_t cudaMallocHost(void** p, size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  *p = bytes ? std::aligned_alloc(256, (bytes + 255) / 256 * 256) : nullptr;
  if (*p == nullptr) return bytes == 0 ? cudaSuccess : fail(cudaErrorMemoryAllocation);
  std::memset(*p, 0xff, bytes);   // uninitialised, as on the device
  g_pinned[reinterpret_cast<uintptr_t>(*p)] = bytes;
  return cudaSuccess;
}
namespace {
cudaError_t release_device(void* p) {
  if (g_allocations.erase(reinterpret_cast<uintptr_t>(p)) == 0) return fail(cudaErrorInvalidValue);
  std::free(p);
  return cudaSuccess;
}
}  // namespace
cudaError_t cudaFree(void* p) {
  if (p == nullptr) return cudaSuccess;
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  complete_all("cudaFree");   // cudaFree synchronises the device
  return release_device(p);
}
cudaError_t cudaFreeAsync(void* p, cudaStream_t) {
  if (p == nullptr) return cudaSuccess;
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  return release_device(p);   // pending copies out of p already hold what they read
}
cudaError_t cudaFreeHost(void* p) {
  if (p == nullptr) return cudaSuccess;
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  complete_all("cudaFreeHost");   // cudaFreeHost synchronises the device
  if (g_pinned.erase(reinterpret_cast<uintptr_t>(p)) == 0) return fail(cudaErrorInvalidValue);
  std::free(p);
  return cudaSuccess;
}

// Synchronous copies and memsets: on the legacy default stream, which waits for the blocking streams' work first.
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  complete_stream(nullptr, g_tickets, "cudaMemcpy");
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  const bool from_pinned = in_pinned(src, bytes) && emu::detail::in_device_allocation(dst);
  const bool to_pinned = in_pinned(dst, bytes) && emu::detail::in_device_allocation(src);
  if (!from_pinned && !to_pinned) {   // pageable host memory: the call returns when the host side is done with it
    std::memmove(dst, src, bytes);
    return cudaSuccess;
  }
  auto* host = static_cast<unsigned char*>(from_pinned ? const_cast<void*>(src) : dst);
  if (to_pinned) {   // earlier copies out of this host range read it before this one overwrites it
    const auto a = reinterpret_cast<uintptr_t>(host);
    complete_where([&](const PendingCopy& c) {
      const auto b = reinterpret_cast<uintptr_t>(c.host);
      return !c.to_host && b < a + bytes && a < b + c.bytes.size();
    }, "cudaMemcpyAsync");
  }
  PendingCopy c{++g_tickets, stream, to_pinned, host, {}};
  const auto* from = static_cast<const unsigned char*>(src);
  c.bytes.assign(from, from + bytes);   // what the copy reads now, in stream order
  if (from_pinned)
    std::memcpy(dst, src, bytes);
  else
    std::memset(dst, 0xff, bytes);      // not there for the host before a synchronisation
  g_pending.push_back(std::move(c));
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  complete_stream(nullptr, g_tickets, "cudaMemset");
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  *s = new CUstream_st{flags};
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  complete_where([&](const PendingCopy& c) { return c.stream == s; }, "cudaStreamDestroy");   // its work still runs
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  complete_stream(s, g_tickets, "cudaStreamSynchronize");
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st{};
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (e == nullptr) return fail(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  e->stream = s;
  e->ticket = g_tickets;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (e == nullptr) return fail(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  complete_stream(e->stream, e->ticket, "cudaEventSynchronize");
  return cudaSuccess;
}
// Orders device work only; every kernel and device-side copy has already run.
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }

cudaError_t emu_func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || static_cast<size_t>(value) > kOptinSharedPerBlock) return fail(cudaErrorInvalidValue);
    g_kernel_shared_limit[kernel] = static_cast<size_t>(value);
  }
  return cudaSuccess;
}
int emu_max_active_blocks(int block_threads, size_t dynamic_smem) {
  if (block_threads <= 0) return 0;
  int blocks = std::min(32, kMaxThreadsPerMultiprocessor / block_threads);
  if (dynamic_smem > 0) blocks = std::min<int>(blocks, static_cast<int>(kSharedPerMultiprocessor / (dynamic_smem + 1024)));
  return blocks;
}
