// The CPU SIMT emulator (see emulator.h): coroutine threads with a hand-written context switch, the block scheduler,
// barriers and warp collectives (shuffles, votes, ldmatrix, mma.m16n8k16), cp.async groups and
// ptx.cuh's emulated primitives.
#include "emulator.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <numeric>
#include <string>
#include <vector>

#include "cuda/ptx.cuh"

uint3 threadIdx;
uint3 blockIdx;
dim3 blockDim;
dim3 gridDim;

// ---- context switch: saves the callee-saved registers and the FP control words on the old stack, loads the new one.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__x86_64__)
extern "C" void stepwise_emu_switch_context(void** save_sp, void* load_sp);
asm(R"(
  .text
  .globl stepwise_emu_switch_context
  .type stepwise_emu_switch_context, @function
stepwise_emu_switch_context:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size stepwise_emu_switch_context, .-stepwise_emu_switch_context
  .section .note.GNU-stack,"",@progbits
  .text
)");
#else
#include <ucontext.h>
#endif

namespace emu {
namespace {

[[noreturn]] void fatal(const std::string& message) {
  std::fprintf(stderr, "stepwise emulator: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string hex(const void* p) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%p", p);
  return buffer;
}
std::string hex_mask(unsigned mask) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "0x%08x", mask);
  return buffer;
}
std::string str(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

#if defined(__x86_64__)
struct Context {
  void* sp = nullptr;
};
void switch_context(Context& from, const Context& to) { stepwise_emu_switch_context(&from.sp, to.sp); }
// A fresh context whose first switch "returns" into entry() with the stack aligned as after a call.
void make_context(Context& c, char* stack_lo, size_t bytes, void (*entry)()) {
  auto* top = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(stack_lo + bytes) & ~uintptr_t{15});
  top[-1] = 0;                                        // entry's (never used) return address
  top[-2] = reinterpret_cast<uint64_t>(entry);        // popped by `ret`
  for (int slot = 3; slot <= 8; ++slot) top[-slot] = 0;   // rbp rbx r12 r13 r14 r15
  top[-9] = 0x1f80u | (uint64_t{0x037fu} << 32);      // default MXCSR, x87 control word
  c.sp = top - 9;
}
#else
struct Context {
  ucontext_t uc;
};
void switch_context(Context& from, const Context& to) { swapcontext(&from.uc, &to.uc); }
void make_context(Context& c, char* stack_lo, size_t bytes, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack_lo;
  c.uc.uc_stack.ss_size = bytes;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
#endif

// ---- the emulated device's limits
constexpr int kMaxThreadsPerBlock = 1024;
constexpr size_t kStackBytes = 512 * 1024;   // per emulated thread; big register arrays live here

// ---- state of the running block
enum class State { runnable, running, barrier, warp, done };
enum class WarpOp { syncwarp, shfl_idx, shfl_up, shfl_down, shfl_bfly, ballot, any, all, ldsm_x4, ldsm_x4_t, ldsm_x2,
                    ldsm_x2_t, mma };
const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::syncwarp: return "__syncwarp";
    case WarpOp::shfl_idx: return "__shfl_sync";
    case WarpOp::shfl_up: return "__shfl_up_sync";
    case WarpOp::shfl_down: return "__shfl_down_sync";
    case WarpOp::shfl_bfly: return "__shfl_xor_sync";
    case WarpOp::ballot: return "__ballot_sync";
    case WarpOp::any: return "__any_sync";
    case WarpOp::all: return "__all_sync";
    case WarpOp::ldsm_x4: return "ldmatrix_x4";
    case WarpOp::ldsm_x4_t: return "ldmatrix_x4_trans";
    case WarpOp::ldsm_x2: return "ldmatrix_x2";
    case WarpOp::ldsm_x2_t: return "ldmatrix_x2_trans";
    case WarpOp::mma: return "mma_bf16_16816";
  }
  return "?";
}

struct AsyncCopy {
  void* dst;
  const void* src;
  bool valid;
};

struct Thread {
  Context context;
  char* stack = nullptr;       // lowest address of its stack
  size_t stack_bytes = 0;
  void* asan_fake_stack = nullptr;
  uint3 index{};
  int id = 0, warp = 0, lane = 0;
  State state = State::runnable;
  // The warp collective this thread waits in: its operands stay on its (suspended) stack.
  WarpOp op = WarpOp::syncwarp;
  unsigned mask = 0;
  const void* in = nullptr;
  void* out = nullptr;
  // cp.async: copies issued since the last commit, and the committed groups not yet waited for (oldest first).
  std::vector<AsyncCopy> open_group;
  std::deque<std::vector<AsyncCopy>> committed;
};

struct Block {
  std::vector<Thread> threads;
  std::vector<int> runnable;
  std::vector<unsigned> warp_waiting, warp_exited;   // per warp: lanes waiting in a warp collective / exited
  int at_barrier = 0, exited = 0;
  int barrier_count = 0, barrier_result = 0;   // __syncthreads_count: true predicates so far / of the last barrier
  unsigned char* shared = nullptr;
  size_t shared_bytes = 0;
  bool copies_land_at_issue = false;   // this block's draw of CopyLanding
  void (*body)(void*) = nullptr;
  void* body_context = nullptr;
};

Block g_block;
Thread* g_current = nullptr;
Context g_scheduler;
std::vector<char*> g_stacks;
// SplitMix64: a small, fast generator for the scheduler's choices.
struct SplitMix64 {
  using result_type = uint64_t;
  uint64_t state = 0;
  static constexpr uint64_t min() { return 0; }
  static constexpr uint64_t max() { return ~uint64_t{0}; }
  void seed(uint64_t s) { state = s; }
  uint64_t operator()() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};
SplitMix64 g_rng;
uint64_t g_seed = 0;
bool g_seeded = false;
CopyLanding g_landing = CopyLanding::per_block;


void ensure_seeded() {
  if (g_seeded) return;
  const char* env = std::getenv("STEPWISE_EMU_SEED");
  set_seed(env ? std::strtoull(env, nullptr, 0) : 1);
}

Thread& current(const char* what) {
  if (g_current == nullptr) fatal(std::string(what) + " called outside an emulated kernel");
  return *g_current;
}

std::string where(const Thread& t) {
  return "block " + str(blockIdx) + " thread " + str(t.index) + " (warp " + std::to_string(t.warp) + ", lane " +
         std::to_string(t.lane) + ")";
}

char* stack_for(size_t i) {
  while (g_stacks.size() <= i) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) fatal("cannot map a thread stack");
    mprotect(p, page, PROT_NONE);   // guard page: a stack overflow faults instead of corrupting the neighbour
    g_stacks.push_back(static_cast<char*>(p) + page);
  }
  return g_stacks[i];
}

// Switches between the scheduler and a thread, telling AddressSanitizer (when built with it) which stack is live.
#if defined(__SANITIZE_ADDRESS__)
const void* g_scheduler_stack = nullptr;
size_t g_scheduler_stack_bytes = 0;
void resume(Thread& t) {
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, t.stack, t.stack_bytes);
  switch_context(g_scheduler, t.context);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
}
void enter_thread() { __sanitizer_finish_switch_fiber(nullptr, &g_scheduler_stack, &g_scheduler_stack_bytes); }
void switch_to_scheduler(bool exiting) {
  Thread& me = *g_current;
  __sanitizer_start_switch_fiber(exiting ? nullptr : &me.asan_fake_stack, g_scheduler_stack, g_scheduler_stack_bytes);
  switch_context(me.context, g_scheduler);
  __sanitizer_finish_switch_fiber(me.asan_fake_stack, &g_scheduler_stack, &g_scheduler_stack_bytes);
}
void prepare_stack(char* stack, size_t bytes) { ASAN_UNPOISON_MEMORY_REGION(stack, bytes); }
#else
void resume(Thread& t) { switch_context(g_scheduler, t.context); }
void enter_thread() {}
void switch_to_scheduler(bool) { switch_context(g_current->context, g_scheduler); }
void prepare_stack(char*, size_t) {}
#endif

void yield_to_scheduler() { switch_to_scheduler(false); }

[[noreturn]] void thread_entry() {
  enter_thread();
  try {
    g_block.body(g_block.body_context);
  } catch (const std::exception& e) {
    fatal(where(*g_current) + ": exception escaped the kernel: " + e.what());
  } catch (...) {
    fatal(where(*g_current) + ": exception escaped the kernel");
  }
  g_current->state = State::done;
  g_current->open_group.clear();   // copies never waited for die with the block's shared memory
  g_current->committed.clear();
  g_block.warp_exited[static_cast<size_t>(g_current->warp)] |= 1u << g_current->lane;
  ++g_block.exited;
  switch_to_scheduler(true);
  fatal("an exited thread was resumed");
}

void make_runnable(Thread& t) {
  t.state = State::runnable;
  g_block.runnable.push_back(t.id);
}

// ---- the deadlock report: what every unfinished thread waits for.
[[noreturn]] void report_deadlock() {
  std::string message = "deadlock in block " + str(blockIdx) + " (" + std::to_string(g_block.threads.size()) +
                        " threads): ";
  if (g_block.at_barrier > 0)
    message += std::to_string(g_block.at_barrier) + " wait at __syncthreads (it needs every thread of the block; " +
               std::to_string(g_block.exited) + " have exited); ";
  int shown = 0;
  for (const Thread& t : g_block.threads) {
    if (t.state != State::warp) continue;
    if (shown++ == 4) {
      message += "...; ";
      break;
    }
    message += "thread " + str(t.index) + " (warp " + std::to_string(t.warp) + " lane " + std::to_string(t.lane) +
               ") waits in " + op_name(t.op) + " with mask " + hex_mask(t.mask) + "; ";
  }
  fatal(message);
}

void run_block(dim3 block, const void* kernel) {
  const int count = static_cast<int>(block.x * block.y * block.z);
  g_block.threads.assign(static_cast<size_t>(count), Thread{});
  g_block.runnable.clear();
  g_block.at_barrier = g_block.exited = g_block.barrier_count = g_block.barrier_result = 0;
  g_block.warp_waiting.assign(static_cast<size_t>((count + 31) / 32), 0u);
  g_block.warp_exited.assign(static_cast<size_t>((count + 31) / 32), 0u);
  std::fill_n(g_block.shared, g_block.shared_bytes, static_cast<unsigned char>(0xff));
  g_block.copies_land_at_issue =
      g_landing == CopyLanding::at_issue || (g_landing == CopyLanding::per_block && (g_rng() & 1) != 0);
  for (int i = 0; i < count; ++i) {
    Thread& t = g_block.threads[static_cast<size_t>(i)];
    t.id = i;
    t.index = {static_cast<unsigned>(i) % block.x, (static_cast<unsigned>(i) / block.x) % block.y,
               static_cast<unsigned>(i) / (block.x * block.y)};
    t.warp = i / 32;
    t.lane = i % 32;
    // Stagger the stack tops so that the hot frames of different threads do not all map to the same cache sets.
    t.stack = stack_for(static_cast<size_t>(i));
    t.stack_bytes = kStackBytes - 64 * static_cast<size_t>(i % 64);
    prepare_stack(t.stack, kStackBytes);   // frames of the previous block's threads never returned
    make_context(t.context, t.stack, t.stack_bytes, &thread_entry);
    g_block.runnable.push_back(i);
  }
  while (!g_block.runnable.empty()) {
    const size_t pick = static_cast<size_t>(g_rng() % g_block.runnable.size());
    Thread& t = g_block.threads[static_cast<size_t>(g_block.runnable[pick])];
    g_block.runnable[pick] = g_block.runnable.back();
    g_block.runnable.pop_back();
    t.state = State::running;
    threadIdx = t.index;
    g_current = &t;
    resume(t);
    g_current = nullptr;
  }
  (void)kernel;
  if (g_block.exited != count) report_deadlock();
}

// ---- memory classification for ldmatrix / cp.async address checks
// A shared-memory operand of `bytes` bytes at p: 16-byte aligned, not device (global) memory, and, when it touches
// the dynamic shared memory, inside it.
void check_shared_operand(const void* p, size_t bytes, const char* what, const Thread& t) {
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0)
    fatal(where(t) + ": " + what + ": shared address " + hex(p) + " is not 16-byte aligned");
  if (detail::in_device_allocation(p)) fatal(where(t) + ": " + what + ": address " + hex(p) + " is global, not shared memory");
  const auto a = reinterpret_cast<uintptr_t>(p), lo = reinterpret_cast<uintptr_t>(g_block.shared),
             hi = lo + g_block.shared_bytes;
  if (a + bytes > lo && a < hi && a + bytes > hi)
    fatal(where(t) + ": " + what + ": address " + hex(p) + " runs past the end of the " +
          std::to_string(g_block.shared_bytes) + " bytes of dynamic shared memory");
  if (a < lo && a + bytes > lo)
    fatal(where(t) + ": " + what + ": address " + hex(p) + " starts before the dynamic shared memory");
}

// ---- warp collectives. Every lane of `mask` calls the same operation with the same mask; the last one to arrive
// computes all lanes' results; then all of them become runnable again.
using Lanes = Thread* [32];
uint16_t lo16(uint32_t v) { return static_cast<uint16_t>(v & 0xffffu); }
uint16_t hi16(uint32_t v) { return static_cast<uint16_t>(v >> 16); }
float bf16_to_float(uint16_t bits) { return detail::bf16_bits_to_float(bits); }

struct ShuffleIn {
  uint64_t value;
  int operand, width;
};
struct MmaIn {
  const uint32_t* a;
  const uint32_t* b;
};

void compute_shuffle(WarpOp op, const Lanes& lanes, unsigned mask) {
  for (int lane = 0; lane < 32; ++lane) {
    if (!lanes[lane]) continue;
    const auto& in = *static_cast<const ShuffleIn*>(lanes[lane]->in);
    const int width = in.width;
    if (width < 1 || width > 32 || (width & (width - 1)) != 0)
      fatal(where(*lanes[lane]) + ": " + op_name(op) + ": width " + std::to_string(width) + " is not a power of 2 <= 32");
    const int segment = lane & ~(width - 1);
    int src = lane;
    switch (op) {
      case WarpOp::shfl_idx: src = segment + (in.operand & (width - 1)); break;
      case WarpOp::shfl_up: src = (lane - segment) >= in.operand ? lane - in.operand : lane; break;
      case WarpOp::shfl_down: src = (lane - segment) + in.operand < width ? lane + in.operand : lane; break;
      case WarpOp::shfl_bfly: src = (lane ^ in.operand) <= segment + width - 1 ? (lane ^ in.operand) : lane; break;
      default: break;
    }
    if (!lanes[src])
      fatal(where(*lanes[lane]) + ": " + op_name(op) + " reads lane " + std::to_string(src) + ", which is not in mask " +
            hex_mask(mask));
    *static_cast<uint64_t*>(lanes[lane]->out) = static_cast<const ShuffleIn*>(lanes[src]->in)->value;
  }
}

void compute_vote(WarpOp op, const Lanes& lanes, unsigned mask) {
  unsigned ballot = 0;
  for (int lane = 0; lane < 32; ++lane)
    if (lanes[lane] && *static_cast<const bool*>(lanes[lane]->in)) ballot |= 1u << lane;
  const unsigned result = op == WarpOp::ballot ? ballot : op == WarpOp::any ? (ballot != 0) : (ballot == mask);
  for (int lane = 0; lane < 32; ++lane)
    if (lanes[lane]) *static_cast<unsigned*>(lanes[lane]->out) = result;
}

// ldmatrix m8n8 b16: lane 8i + r gives the address of row r of matrix i; lane 4g + t receives (row g, elements 2t,
// 2t+1) of each matrix, or with .trans (rows 2t and 2t+1, column g).
void compute_ldmatrix(WarpOp op, const Lanes& lanes) {
  const int matrices = (op == WarpOp::ldsm_x4 || op == WarpOp::ldsm_x4_t) ? 4 : 2;
  const bool trans = op == WarpOp::ldsm_x4_t || op == WarpOp::ldsm_x2_t;
  for (int lane = 0; lane < 32; ++lane) check_shared_operand(lanes[lane]->in, 16, op_name(op), *lanes[lane]);
  auto row = [&](int matrix, int r) { return static_cast<const unsigned char*>(lanes[8 * matrix + r]->in); };
  uint32_t result[32][4];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    for (int i = 0; i < matrices; ++i) {
      if (!trans) {
        std::memcpy(&result[lane][i], row(i, g) + 4 * t, 4);
      } else {
        uint16_t lo, hi;
        std::memcpy(&lo, row(i, 2 * t) + 2 * g, 2);
        std::memcpy(&hi, row(i, 2 * t + 1) + 2 * g, 2);
        result[lane][i] = lo | (uint32_t{hi} << 16);
      }
    }
  }
  for (int lane = 0; lane < 32; ++lane) std::memcpy(lanes[lane]->out, result[lane], sizeof(uint32_t) * matrices);
}

// mma.m16n8k16 bf16 -> fp32: D = A (16 x 16) B (16 x 8) + C with the fragment layouts of ptx.cuh.
void compute_mma(const Lanes& lanes) {
  float a[16][16], b[16][8], c[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    const auto& in = *static_cast<const MmaIn*>(lanes[lane]->in);
    const float* d = static_cast<const float*>(lanes[lane]->out);
    for (int half = 0; half < 2; ++half) {   // a[0..1]: k 2t..2t+1, a[2..3]: k 2t+8..2t+9
      for (int upper = 0; upper < 2; ++upper) {   // rows g, g+8
        const uint32_t reg = in.a[2 * half + upper];
        a[g + 8 * upper][2 * t + 8 * half] = bf16_to_float(lo16(reg));
        a[g + 8 * upper][2 * t + 8 * half + 1] = bf16_to_float(hi16(reg));
      }
      b[2 * t + 8 * half][g] = bf16_to_float(lo16(in.b[half]));
      b[2 * t + 8 * half + 1][g] = bf16_to_float(hi16(in.b[half]));
    }
    c[g][2 * t] = d[0];
    c[g][2 * t + 1] = d[1];
    c[g + 8][2 * t] = d[2];
    c[g + 8][2 * t + 1] = d[3];
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    float* d = static_cast<float*>(lanes[lane]->out);
    for (int e = 0; e < 4; ++e) {
      const int m = g + 8 * (e / 2), n = 2 * t + e % 2;
      float acc = c[m][n];
      for (int k = 0; k < 16; ++k) acc += a[m][k] * b[k][n];   // bf16 x bf16 is exact in fp32
      d[e] = acc;
    }
  }
}

void warp_collective(WarpOp op, unsigned mask, const void* in, void* out) {
  Thread& me = current(op_name(op));
  const int block_threads = static_cast<int>(g_block.threads.size());
  const int base = me.warp * 32, lanes_here = std::min(32, block_threads - base);
  const unsigned existing = lanes_here == 32 ? 0xffffffffu : ((1u << lanes_here) - 1);
  if (!((mask >> me.lane) & 1u))
    fatal(where(me) + ": " + op_name(op) + " with mask " + hex_mask(mask) + " that does not name the calling lane");
  if (mask & ~existing)
    fatal(where(me) + ": " + op_name(op) + " with mask " + hex_mask(mask) + " names lanes that do not exist (warp " +
          std::to_string(me.warp) + " has " + std::to_string(lanes_here) + " threads)");
  const bool whole_warp = op >= WarpOp::ldsm_x4;
  if (whole_warp && mask != 0xffffffffu)
    fatal(where(me) + ": " + op_name(op) + " needs all 32 lanes of the warp (.sync.aligned); warp " +
          std::to_string(me.warp) + " has " + std::to_string(lanes_here) + " threads");
  me.op = op;
  me.mask = mask;
  me.in = in;
  me.out = out;
  me.state = State::warp;
  unsigned& waiting = g_block.warp_waiting[static_cast<size_t>(me.warp)];
  waiting |= 1u << me.lane;
  if (const unsigned gone = mask & g_block.warp_exited[static_cast<size_t>(me.warp)])
    fatal(where(me) + ": " + op_name(op) + " with mask " + hex_mask(mask) + " waits for lane " +
          std::to_string(__builtin_ctz(gone)) + ", which has exited");
  if ((waiting & mask) != mask) {   // some lanes have not arrived yet
    yield_to_scheduler();
    return;
  }
  Lanes lanes{};
  bool complete = true;
  for (int lane = 0; lane < 32; ++lane) {
    if (!((mask >> lane) & 1u)) continue;
    Thread& t = g_block.threads[static_cast<size_t>(base + lane)];
    lanes[lane] = &t;
    if (t.op == op && t.mask == mask) continue;
    // Waiting in another collective is fine while that one can complete without us (e.g. two half-warp shuffles);
    // when it needs us too, neither can ever complete.
    complete = false;
    if ((t.mask >> me.lane) & 1u)
      fatal("divergent warp collective in block " + str(blockIdx) + " warp " + std::to_string(me.warp) + ": lane " +
            std::to_string(me.lane) + " is in " + op_name(op) + " (mask " + hex_mask(mask) + ") while lane " +
            std::to_string(lane) + " is in " + op_name(t.op) + " (mask " + hex_mask(t.mask) + ")");
  }
  if (complete) {
    switch (op) {
      case WarpOp::syncwarp: break;
      case WarpOp::shfl_idx:
      case WarpOp::shfl_up:
      case WarpOp::shfl_down:
      case WarpOp::shfl_bfly: compute_shuffle(op, lanes, mask); break;
      case WarpOp::ballot:
      case WarpOp::any:
      case WarpOp::all: compute_vote(op, lanes, mask); break;
      case WarpOp::ldsm_x4:
      case WarpOp::ldsm_x4_t:
      case WarpOp::ldsm_x2:
      case WarpOp::ldsm_x2_t: compute_ldmatrix(op, lanes); break;
      case WarpOp::mma: compute_mma(lanes); break;
    }
    waiting &= ~mask;
    for (Thread* t : lanes)
      if (t) make_runnable(*t);
  }
  yield_to_scheduler();
}

void perform(const std::vector<AsyncCopy>& group) {
  for (const AsyncCopy& c : group) {
    if (c.valid)
      std::memcpy(c.dst, c.src, 16);
    else
      std::memset(c.dst, 0, 16);
  }
}

}  // namespace

// ---- public API
void set_seed(uint64_t s) {
  g_seed = s;
  g_rng.seed(s);
  g_seeded = true;
}
uint64_t seed() {
  ensure_seeded();
  return g_seed;
}
void set_copy_landing(CopyLanding landing) { g_landing = landing; }

unsigned char* dynamic_shared_memory() {
  current("dynamic shared memory");
  return g_block.shared;
}

namespace detail {

void run_grid(const void* kernel, dim3 grid, dim3 block, size_t dynamic_smem, void (*body)(void*), void* ctx) {
  ensure_seeded();
  if (g_current != nullptr) fatal("a kernel launched from inside a kernel (dynamic parallelism) is not emulated");
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (threads == 0 || threads > kMaxThreadsPerBlock || block.z > 64)
    fatal("invalid launch: block " + str(block) + " (1 to 1024 threads, z <= 64)");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 || grid.x > 0x7fffffffu)
    fatal("invalid launch: grid " + str(grid));
  const size_t limit = dynamic_shared_limit(kernel);
  if (dynamic_smem > limit)
    fatal("invalid launch: " + std::to_string(dynamic_smem) + " bytes of dynamic shared memory exceed the kernel's " +
          std::to_string(limit) +
          " (above 48 KiB needs cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), at "
          "most 227 KiB)");
  const size_t shared_bytes = std::max<size_t>(dynamic_smem, 16);
  g_block.shared = static_cast<unsigned char*>(std::aligned_alloc(128, (shared_bytes + 127) / 128 * 128));
  g_block.shared_bytes = dynamic_smem;
  g_block.body = body;
  g_block.body_context = ctx;
  gridDim = grid;
  blockDim = block;

  std::vector<uint64_t> order(uint64_t{grid.x} * grid.y * grid.z);
  std::iota(order.begin(), order.end(), uint64_t{0});
  std::shuffle(order.begin(), order.end(), g_rng);
  for (uint64_t b : order) {
    blockIdx = {static_cast<unsigned>(b % grid.x), static_cast<unsigned>((b / grid.x) % grid.y),
                static_cast<unsigned>(b / (uint64_t{grid.x} * grid.y))};
    run_block(block, kernel);
  }
  std::free(g_block.shared);
  g_block.shared = nullptr;
  g_block.shared_bytes = 0;
  g_block.threads.clear();
}

int syncthreads_count(bool predicate) {
  Thread& me = current("__syncthreads");
  me.state = State::barrier;
  g_block.barrier_count += predicate ? 1 : 0;
  ++g_block.at_barrier;
  if (g_block.at_barrier == static_cast<int>(g_block.threads.size())) {
    g_block.at_barrier = 0;
    g_block.barrier_result = g_block.barrier_count;
    g_block.barrier_count = 0;
    for (Thread& t : g_block.threads) make_runnable(t);
  }
  yield_to_scheduler();
  return g_block.barrier_result;   // the next barrier cannot complete before every thread has read this
}

void syncthreads() { syncthreads_count(false); }

void syncwarp(unsigned mask) { warp_collective(WarpOp::syncwarp, mask, nullptr, nullptr); }

uint64_t shuffle(unsigned mask, uint64_t value, ShuffleMode mode, int operand, int width) {
  const WarpOp op = mode == ShuffleMode::index ? WarpOp::shfl_idx
                    : mode == ShuffleMode::up  ? WarpOp::shfl_up
                    : mode == ShuffleMode::down ? WarpOp::shfl_down
                                                : WarpOp::shfl_bfly;
  const ShuffleIn in{value, operand, width};
  uint64_t out = 0;
  warp_collective(op, mask, &in, &out);
  return out;
}

unsigned vote(unsigned mask, bool predicate, VoteMode mode) {
  const WarpOp op = mode == VoteMode::ballot ? WarpOp::ballot : mode == VoteMode::any ? WarpOp::any : WarpOp::all;
  unsigned out = 0;
  warp_collective(op, mask, &predicate, &out);
  return out;
}

}  // namespace detail
}  // namespace emu

// ---- ptx.cuh under STEPWISE_CUDA_EMULATOR
namespace stepwise::cuda::ptx {

void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  const emu::MmaIn in{a, b};
  emu::warp_collective(emu::WarpOp::mma, 0xffffffffu, &in, d);
}
void ldmatrix_x4(uint32_t (&r)[4], const void* row) { emu::warp_collective(emu::WarpOp::ldsm_x4, 0xffffffffu, row, r); }
void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  emu::warp_collective(emu::WarpOp::ldsm_x4_t, 0xffffffffu, row, r);
}
void ldmatrix_x2(uint32_t (&r)[2], const void* row) { emu::warp_collective(emu::WarpOp::ldsm_x2, 0xffffffffu, row, r); }
void ldmatrix_x2_trans(uint32_t (&r)[2], const void* row) {
  emu::warp_collective(emu::WarpOp::ldsm_x2_t, 0xffffffffu, row, r);
}

void cp_async_16(void* shared_dst, const void* global_src, bool valid) {
  emu::Thread& me = emu::current("cp_async_16");
  emu::check_shared_operand(shared_dst, 16, "cp_async_16 destination", me);
  if (reinterpret_cast<uintptr_t>(global_src) % 16 != 0)
    emu::fatal(emu::where(me) + ": cp_async_16: global address " + emu::hex(global_src) + " is not 16-byte aligned");
  if (emu::g_block.copies_land_at_issue)
    emu::perform({{shared_dst, global_src, valid}});
  else
    me.open_group.push_back({shared_dst, global_src, valid});
}
void cp_async_commit() {
  emu::Thread& me = emu::current("cp_async_commit");
  me.committed.push_back(std::move(me.open_group));
  me.open_group.clear();
}
void cp_async_wait_groups(int pending) {
  emu::Thread& me = emu::current("cp_async_wait");
  if (pending < 0) emu::fatal(emu::where(me) + ": cp_async_wait<" + std::to_string(pending) + ">");
  while (me.committed.size() > static_cast<size_t>(pending)) {
    emu::perform(me.committed.front());
    me.committed.pop_front();
  }
}
unsigned char* dynamic_shared_base() { return emu::dynamic_shared_memory(); }

}  // namespace stepwise::cuda::ptx
