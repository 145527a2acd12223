// MpiSession, MpiTransport and the FFN rank's main loop. Wire format, per message on one tag (work: rank 0 -> 1,
// results: rank 1 -> 0), in order: a header of 8 int64 {kind, layer, micro_batch, n, a, b, c, step}, then one
// message per non-empty payload array. A per-direction send mutex keeps a header and its payload adjacent, and MPI's
// non-overtaking rule (same source, tag and communicator) keeps them in order at the receiver.
//   work      a = hidden floats (n*C), b = ids int32 (n*K or 0), c = weights floats (n*K or 0)
//   result    a = out floats (n*C), b = error bytes, c = the FFN worker's wait for this work in nanoseconds
//   ready     a = hidden_size, b = num_hidden_layers, c = error bytes   (rank 1 -> 0, once, after loading)
//   close     (rank 0 -> 1: no more work)      close_ack   (rank 1 -> 0: every result was sent)
// Threading: with MPI_THREAD_MULTIPLE, sends are plain MPI_Send on the caller's thread and a receive thread per
// process polls for headers (MPI_Iprobe with backoff: OpenMPI's blocking receive spins a core even while idle) and
// receives their payloads with MPI_Recv. Otherwise (MPI_THREAD_SERIALIZED, or STEPWISE_MPI_SERIALIZED=1 to exercise
// it) every MPI call holds one process-wide mutex and blocking calls become MPI_Isend + MPI_Test / MPI_Iprobe polls
// that release it between tries, so a send waiting for the peer never keeps this process's receive thread from
// running.
#include "serve/afd/mpi_transport.h"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>

#include "ckpt/model_io.h"
#include "core/error.h"
#include "core/log.h"
#include "serve/afd/ffn_worker.h"

namespace stepwise {

namespace {

constexpr int kWorkTag = 4101;     // attention rank -> FFN rank
constexpr int kResultTag = 4102;   // FFN rank -> attention rank

enum Kind : int64_t { kWork = 1, kResult = 2, kReady = 3, kClose = 4, kCloseAck = 5 };

struct Header {
  int64_t kind = 0, layer = 0, micro_batch = 0, n = 0, a = 0, b = 0, c = 0, step = 0;
};
constexpr int kHeaderWords = 8;
static_assert(sizeof(Header) == kHeaderWords * sizeof(int64_t));

MpiSession* g_session = nullptr;
std::mutex g_mpi_call_mutex;       // held around every MPI call when the library is not MPI_THREAD_MULTIPLE

// Pauses between polls: yields for the first 200 us (a message due soon costs no sleep), then sleeps 20 us doubling
// up to 1 ms, so an idle link (a server between requests) costs ~1000 wake-ups a second instead of a spinning core.
class Backoff {
 public:
  void pause() {
    if (std::chrono::steady_clock::now() - start_ < std::chrono::microseconds(200)) {
      std::this_thread::yield();
      return;
    }
    std::this_thread::sleep_for(sleep_);
    sleep_ = std::min(sleep_ * 2, std::chrono::microseconds(1000));
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::microseconds sleep_{20};
};

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char message[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, message, &length);
  fail("MPI ", what, " failed: ", std::string(message, static_cast<size_t>(length)));
}

int mpi_count(size_t count, const char* what) {
  if (count > static_cast<size_t>(INT_MAX)) fail("AFD MPI message: ", what, " has ", count, " elements (> INT_MAX)");
  return static_cast<int>(count);
}

bool serialized_forced() {
  const char* v = std::getenv("STEPWISE_MPI_SERIALIZED");
  return v && std::string(v) == "1";
}

// Point-to-point with the peer rank, honouring the session's threading level.
class Link {
 public:
  Link(int peer, bool thread_multiple) : peer_(peer), multiple_(thread_multiple) {}

  void send(const void* data, size_t count, MPI_Datatype type, int tag) const {
    const int n = mpi_count(count, "payload");
    if (multiple_) {
      check_mpi(MPI_Send(data, n, type, peer_, tag, MPI_COMM_WORLD), "MPI_Send");
      return;
    }
    MPI_Request request;
    {
      std::lock_guard<std::mutex> lock(g_mpi_call_mutex);
      check_mpi(MPI_Isend(data, n, type, peer_, tag, MPI_COMM_WORLD, &request), "MPI_Isend");
    }
    for (Backoff backoff;; backoff.pause()) {
      int done = 0;
      {
        std::lock_guard<std::mutex> lock(g_mpi_call_mutex);
        check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
      }
      if (done) return;
    }
  }

  // Receives the next message on `tag`. poll: probe with pauses before the (then immediate) MPI_Recv, which the
  // serialised mode always needs and the MPI_THREAD_MULTIPLE mode uses for headers (a blocking MPI_Recv spins).
  void recv(void* data, size_t count, MPI_Datatype type, int tag, bool poll = false) const {
    const int n = mpi_count(count, "payload");
    if (multiple_ && !poll) {
      check_mpi(MPI_Recv(data, n, type, peer_, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
      return;
    }
    for (Backoff backoff;; backoff.pause()) {
      std::unique_lock<std::mutex> lock(g_mpi_call_mutex, std::defer_lock);
      if (!multiple_) lock.lock();
      int arrived = 0;
      check_mpi(MPI_Iprobe(peer_, tag, MPI_COMM_WORLD, &arrived, MPI_STATUS_IGNORE), "MPI_Iprobe");
      if (arrived) {
        check_mpi(MPI_Recv(data, n, type, peer_, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
        return;
      }
    }
  }

  Header recv_header(int tag) const {
    Header h;
    recv(&h, kHeaderWords, MPI_INT64_T, tag, /*poll=*/true);
    return h;
  }
  void send_header(const Header& h, int tag) const { send(&h, kHeaderWords, MPI_INT64_T, tag); }

  template <class T>
  std::vector<T> recv_array(int64_t count, MPI_Datatype type, int tag, const char* what) const {
    if (count < 0) fail("AFD MPI message: negative ", what, " count ", count);
    std::vector<T> v(static_cast<size_t>(count));
    if (count > 0) recv(v.data(), v.size(), type, tag);
    return v;
  }
  std::string recv_text(int64_t bytes, int tag) const {
    const std::vector<char> v = recv_array<char>(bytes, MPI_CHAR, tag, "error text");
    return std::string(v.begin(), v.end());
  }

 private:
  int peer_;
  bool multiple_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------------------- session

bool MpiSession::launched_by_mpirun() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
    if (std::getenv(var)) return true;
  return false;
}

MpiSession::MpiSession() {
  if (g_session) fail("MpiSession: MPI is already initialised in this process");
  if (!launched_by_mpirun())
    fail("the mpi transport needs the process to be started by mpirun: run "
         "`mpirun -np 2 stepwise serve --model DIR --transport mpi` (rank 0: attention + HTTP, rank 1: FFN)");
  const int wanted = serialized_forced() ? MPI_THREAD_SERIALIZED : MPI_THREAD_MULTIPLE;
  int provided = MPI_THREAD_SINGLE;
  check_mpi(MPI_Init_thread(nullptr, nullptr, wanted, &provided), "MPI_Init_thread");
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    fail("the MPI library grants only thread level ", provided,
         " but the mpi transport needs at least MPI_THREAD_SERIALIZED");
  }
  thread_multiple_ = provided >= MPI_THREAD_MULTIPLE;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  g_session = this;
  log_debug("mpi: rank ", rank_, " of ", size_, thread_multiple_ ? " (MPI_THREAD_MULTIPLE)" : " (serialised MPI calls)");
}

MpiSession::~MpiSession() {
  g_session = nullptr;
  // An exception leaving while the AFD link is still open would leave the other rank waiting forever (and
  // MPI_Finalize would wait for it): end the whole job instead.
  if (std::uncaught_exceptions() > 0 && aborts_on_unwind()) {
    std::fprintf(stderr, "stepwise: rank %d failed with the AFD link open; aborting the MPI job\n", rank_);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
}

MpiSession* MpiSession::current() { return g_session; }

// -------------------------------------------------------------------------------------------------------- transport

struct MpiTransport::Impl {
  Role role;
  MpiSession* session = nullptr;
  std::unique_ptr<Link> link;
  std::mutex send_mu;                         // keeps a header and its payload adjacent on the wire
  BlockingQueue<FfnWork> work;                // FFN role: received work
  BlockingQueue<FfnResult> results;           // attention role: received results
  BlockingQueue<FfnPeerReady> ready;          // attention role: the FFN rank's ready report
  std::atomic<bool> close_received{false};    // FFN role: rank 0 sent close
  bool closed = false;
  std::thread receiver;

  void receive_loop();
  void receive_loop_body();
};

void MpiTransport::Impl::receive_loop() {
  try {
    receive_loop_body();
  } catch (const std::exception& e) {   // a malformed stream: nothing sensible can follow
    std::fprintf(stderr, "stepwise: rank %d: AFD MPI receive failed: %s\n", session->rank(), e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}

void MpiTransport::Impl::receive_loop_body() {
  const int tag = role == Role::attention ? kResultTag : kWorkTag;
  for (;;) {
    const Header h = link->recv_header(tag);
    if (role == Role::ffn && h.kind == kWork) {
      FfnWork w;
      w.step = h.step;
      w.layer = h.layer;
      w.micro_batch = h.micro_batch;
      w.n = h.n;
      w.hidden = link->recv_array<float>(h.a, MPI_FLOAT, tag, "hidden");
      w.ids = link->recv_array<int32_t>(h.b, MPI_INT32_T, tag, "ids");
      w.weights = link->recv_array<float>(h.c, MPI_FLOAT, tag, "weights");
      work.push(std::move(w));
    } else if (role == Role::ffn && h.kind == kClose) {
      close_received = true;
      work.close();
      return;
    } else if (role == Role::attention && h.kind == kResult) {
      FfnResult r;
      r.step = h.step;
      r.layer = h.layer;
      r.micro_batch = h.micro_batch;
      r.n = h.n;
      r.wait_seconds = static_cast<double>(h.c) * 1e-9;
      r.out = link->recv_array<float>(h.a, MPI_FLOAT, tag, "out");
      r.error = link->recv_text(h.b, tag);
      results.push(std::move(r));
    } else if (role == Role::attention && h.kind == kReady) {
      FfnPeerReady r;
      r.hidden_size = h.a;
      r.num_layers = h.b;
      r.error = link->recv_text(h.c, tag);
      ready.push(std::move(r));
    } else if (role == Role::attention && h.kind == kCloseAck) {
      results.close();
      ready.close();
      return;
    } else {
      fail("unexpected message kind ", h.kind, " on tag ", tag);
    }
  }
}

MpiTransport::MpiTransport(Role role) : impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  im.role = role;
  im.session = MpiSession::current();
  if (!im.session)
    fail("the mpi transport needs MPI: start the program with `mpirun -np 2 ... --transport mpi` "
         "(MPI is not initialised in this process)");
  if (im.session->size() != 2)
    fail("the mpi transport needs exactly 2 MPI processes (rank 0: attention, rank 1: FFN) but mpirun started ",
         im.session->size(), ": run `mpirun -np 2 ...`");
  const int expected_rank = role == Role::attention ? 0 : 1;
  if (im.session->rank() != expected_rank)
    fail("the ", role == Role::attention ? "attention" : "FFN", " side of the mpi transport runs on rank ",
         expected_rank, ", not on rank ", im.session->rank());
  im.link = std::make_unique<Link>(1 - expected_rank, im.session->thread_multiple());
  im.session->set_link_closed(false);
  im.receiver = std::thread([&im] { im.receive_loop(); });
}

MpiTransport::~MpiTransport() {
  try {
    close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stepwise: closing the AFD MPI link failed: %s\n", e.what());
  }
  if (impl_->receiver.joinable()) impl_->receiver.detach();   // only after a failed close
}

void MpiTransport::send_work(FfnWork work) {
  Impl& im = *impl_;
  if (im.role != Role::attention) fail("MpiTransport::send_work is an attention-side call");
  if (im.closed) fail("MpiTransport::send_work after close");
  Header h;
  h.kind = kWork;
  h.step = work.step;
  h.layer = work.layer;
  h.micro_batch = work.micro_batch;
  h.n = work.n;
  h.a = static_cast<int64_t>(work.hidden.size());
  h.b = static_cast<int64_t>(work.ids.size());
  h.c = static_cast<int64_t>(work.weights.size());
  std::lock_guard<std::mutex> lock(im.send_mu);
  im.link->send_header(h, kWorkTag);
  if (!work.hidden.empty()) im.link->send(work.hidden.data(), work.hidden.size(), MPI_FLOAT, kWorkTag);
  if (!work.ids.empty()) im.link->send(work.ids.data(), work.ids.size(), MPI_INT32_T, kWorkTag);
  if (!work.weights.empty()) im.link->send(work.weights.data(), work.weights.size(), MPI_FLOAT, kWorkTag);
}

FfnResult MpiTransport::recv_result() {
  std::optional<FfnResult> r = impl_->results.pop();
  if (!r) fail("AFD MPI link closed (the FFN rank stopped) while the attention side waited for an FFN result");
  return std::move(*r);
}

void MpiTransport::await_ffn_ready(int64_t hidden_size, int64_t num_layers) {
  std::optional<FfnPeerReady> r = impl_->ready.pop();
  if (!r) fail("the FFN rank closed the AFD MPI link before reporting ready");
  if (!r->error.empty()) fail("the FFN rank (MPI rank 1) could not load its side of the model: ", r->error);
  if (r->hidden_size != hidden_size || r->num_layers != num_layers)
    fail("the FFN rank loaded a model with hidden_size ", r->hidden_size, " and ", r->num_layers,
         " layers, but the attention rank has hidden_size ", hidden_size, " and ", num_layers,
         " layers: both ranks must load the same checkpoint");
}

std::optional<FfnWork> MpiTransport::recv_work() { return impl_->work.pop(); }

void MpiTransport::send_result(FfnResult result) {
  Impl& im = *impl_;
  if (im.role != Role::ffn) fail("MpiTransport::send_result is an FFN-side call");
  Header h;
  h.kind = kResult;
  h.step = result.step;
  h.layer = result.layer;
  h.micro_batch = result.micro_batch;
  h.n = result.n;
  h.a = static_cast<int64_t>(result.out.size());
  h.b = static_cast<int64_t>(result.error.size());
  h.c = static_cast<int64_t>(result.wait_seconds * 1e9);
  std::lock_guard<std::mutex> lock(im.send_mu);
  if (im.closed) fail("MpiTransport::send_result after close");
  im.link->send_header(h, kResultTag);
  if (!result.out.empty()) im.link->send(result.out.data(), result.out.size(), MPI_FLOAT, kResultTag);
  if (!result.error.empty()) im.link->send(result.error.data(), result.error.size(), MPI_CHAR, kResultTag);
}

void MpiTransport::send_ready(const FfnPeerReady& ready) {
  Impl& im = *impl_;
  if (im.role != Role::ffn) fail("MpiTransport::send_ready is an FFN-side call");
  Header h;
  h.kind = kReady;
  h.a = ready.hidden_size;
  h.b = ready.num_layers;
  h.c = static_cast<int64_t>(ready.error.size());
  std::lock_guard<std::mutex> lock(im.send_mu);
  im.link->send_header(h, kResultTag);
  if (!ready.error.empty()) im.link->send(ready.error.data(), ready.error.size(), MPI_CHAR, kResultTag);
}

void MpiTransport::close() {
  Impl& im = *impl_;
  {
    std::lock_guard<std::mutex> lock(im.send_mu);
    if (im.closed) return;
    im.closed = true;
    Header h;
    h.kind = im.role == Role::attention ? kClose : kCloseAck;
    im.link->send_header(h, im.role == Role::attention ? kWorkTag : kResultTag);
  }
  // attention: the receive thread ends at the close_ack, after every result; FFN: it ended (or ends) at the close
  if (im.receiver.joinable()) im.receiver.join();
  im.work.close();
  im.results.close();
  im.ready.close();
  im.session->set_link_closed(true);
}

// ------------------------------------------------------------------------------------------------------- FFN rank

void run_mpi_ffn_rank(const fs::path& model_dir, int64_t ffn_workers) {
  if (ffn_workers < 1) fail("--ffn-workers = ", ffn_workers, ": must be at least 1");
  MpiTransport transport(MpiTransport::Role::ffn);
  std::unique_ptr<Step3Model<float>> model;
  FfnPeerReady ready;
  try {
    if (!fs::is_directory(model_dir)) fail(model_dir.string(), ": not a checkpoint directory");
    const Step3Config cfg = Step3Config::load(model_dir);
    ModelOptions ffn_side;
    ffn_side.only_side = ParamSide::ffn;   // the experts, shared experts and dense MLPs, nothing else
    model = std::make_unique<Step3Model<float>>(cfg, ffn_side, false);
    load_model_weights(model_dir, *model);
    ready.hidden_size = cfg.hidden_size;
    ready.num_layers = cfg.num_hidden_layers;
  } catch (const std::exception& e) {
    ready.error = e.what();
  }
  transport.send_ready(ready);
  if (!ready.error.empty()) {
    // rank 0 fails its start on this report; answer anything it may still send, then wait for its close
    while (std::optional<FfnWork> w = transport.recv_work()) {
      FfnResult r;
      r.step = w->step;
      r.layer = w->layer;
      r.micro_batch = w->micro_batch;
      r.n = w->n;
      r.error = "the FFN rank has no model: " + ready.error;
      transport.send_result(std::move(r));
    }
    transport.close();
    fail("FFN rank: ", ready.error);
  }
  log_info("serve: FFN rank ready (", ffn_workers, " FFN worker", ffn_workers == 1 ? "" : "s", ", ",
           model->params().num_params(), " FFN-side parameters)");
  {
    std::vector<std::unique_ptr<FfnWorker>> workers;
    for (int64_t i = 0; i < ffn_workers; ++i) workers.push_back(std::make_unique<FfnWorker>(*model, transport));
  }   // joins: the workers return once rank 0's close message ends the work queue
  transport.close();
  log_info("serve: FFN rank closed by the attention rank; exiting");
}

}  // namespace stepwise
