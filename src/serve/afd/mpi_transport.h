// The process-level AFD transport: the attention side (rank 0: scheduler, KV cache, HTTP) and the FFN side (rank 1:
// dense MLPs, routed and shared experts) run as two MPI processes under `mpirun -np 2`. Each message is a small header
// (kind, layer, micro_batch, n, sizes) followed by its payload arrays; work and results travel on distinct tags, and
// each process keeps a receive thread posted on its incoming tag, so the two directions are independent links.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/fs.h"
#include "serve/afd/transport.h"

namespace stepwise {

// MPI for the life of this object (one per process): MPI_Init_thread asking for MPI_THREAD_MULTIPLE in the
// constructor, MPI_Finalize in the destructor. When the library grants less (but at least MPI_THREAD_SERIALIZED),
// every MPI call is serialised behind one process-wide mutex and blocking operations become polls that release it
// (see mpi_transport.cpp). Throws Error when the process was not started by mpirun (no MPI launcher environment).
class MpiSession {
 public:
  MpiSession();
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool thread_multiple() const { return thread_multiple_; }

  static MpiSession* current();                 // the live session, or nullptr
  static bool launched_by_mpirun();             // an MPI launcher's environment is present

  // Whether this process's AFD link was closed cleanly (set by MpiTransport). The destructor, when it runs during
  // exception unwinding of a 2-process job whose link is not closed, calls MPI_Abort instead of MPI_Finalize: the
  // other rank would otherwise wait forever.
  void set_link_closed(bool closed) { link_closed_ = closed; }
  bool aborts_on_unwind() const { return size_ == 2 && !link_closed_; }

 private:
  int rank_ = 0, size_ = 1;
  bool thread_multiple_ = false;
  bool link_closed_ = false;
};

// Facts the FFN rank reports once it has loaded its weights (or failed to), checked by the attention rank.
struct FfnPeerReady {
  int64_t hidden_size = 0, num_layers = 0;
  std::string error;                            // non-empty: the FFN rank could not load its side of the model
};

class MpiTransport : public Transport {
 public:
  enum class Role { attention, ffn };
  // Needs a live MpiSession of world size 2; the attention role runs on rank 0 and talks to rank 1, the FFN role the
  // reverse. Starts the receive thread of this side's incoming direction.
  MpiTransport(Role role);
  ~MpiTransport() override;                     // close() if not yet closed

  // attention side
  void send_work(FfnWork work) override;
  FfnResult recv_result() override;             // Error once the FFN rank has acknowledged the close
  // Blocks until the FFN rank reports that it loaded its weights; Error when it failed or disagrees on the model shape.
  void await_ffn_ready(int64_t hidden_size, int64_t num_layers);

  // FFN side
  std::optional<FfnWork> recv_work() override;  // nullopt once the attention rank sent its close message
  void send_result(FfnResult result) override;
  void send_ready(const FfnPeerReady& ready);   // first message of the FFN rank

  // Attention role: sends the close message and waits until the FFN rank acknowledges it (all its results received).
  // FFN role: acknowledges the close (call after the FFN workers stopped) and stops the receive thread. Idempotent.
  void close() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The whole life of the FFN rank of `mpirun -np 2 stepwise serve --transport mpi`: loads only the FFN side of the
// checkpoint in `model_dir`, reports ready (or its load error) to rank 0, runs `ffn_workers` FfnWorker threads over
// the MPI transport until rank 0 closes it, then returns. Rethrows a load error after rank 0 closed the link.
void run_mpi_ffn_rank(const fs::path& model_dir, int64_t ffn_workers);

}  // namespace stepwise
