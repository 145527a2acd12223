// FfnWorker: the receive / compute / reply loop, and the in-process transport's result receive.
#include "serve/afd/ffn_worker.h"

#include <chrono>
#include <exception>

#include "core/error.h"

namespace stepwise {

FfnResult InprocTransport::recv_result() {
  std::optional<FfnResult> r = results_.pop();
  if (!r) fail("AFD transport closed while the attention side waited for an FFN result");
  return std::move(*r);
}

FfnWorker::FfnWorker(const Step3Model<float>& model, Transport& transport)
    : model_(model), transport_(transport), thread_([this] { run(); }) {}

FfnWorker::~FfnWorker() {
  if (thread_.joinable()) thread_.join();
}

void FfnWorker::run() {
  const int64_t C = model_.config().hidden_size;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<FfnWork> work = transport_.recv_work();
    if (!work) return;
    FfnResult r;
    r.wait_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.step = work->step;
    r.layer = work->layer;
    r.micro_batch = work->micro_batch;
    r.n = work->n;
    try {
      if (static_cast<int64_t>(work->hidden.size()) != work->n * C)
        fail("FFN work of layer ", work->layer, ": hidden holds ", work->hidden.size(), " values, expected ",
             work->n * C);
      r.out.resize(static_cast<size_t>(work->n * C));
      model_.infer_ffn(work->layer, work->hidden.data(), work->ids.empty() ? nullptr : work->ids.data(),
                       work->weights.empty() ? nullptr : work->weights.data(), work->n, r.out.data());
    } catch (const std::exception& e) {
      r.out.clear();
      r.error = e.what();
    }
    transport_.send_result(std::move(r));
  }
}

}  // namespace stepwise
