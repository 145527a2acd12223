// An FFN worker thread: receives one layer of one micro-batch (normalised hidden states + routing) from the
// transport, runs the FFN side of the model on it (dense MLP, or routed experts + shared expert) and sends the
// output back, with how long it waited for the work. Several workers may share one transport (they take
// micro-batches in turn).
#pragma once
#include <thread>

#include "model/step3_model.h"
#include "serve/afd/transport.h"

namespace stepwise {

class FfnWorker {
 public:
  // Starts the thread. model and transport must outlive the worker.
  FfnWorker(const Step3Model<float>& model, Transport& transport);
  ~FfnWorker();   // joins; close the transport first
  FfnWorker(const FfnWorker&) = delete;
  FfnWorker& operator=(const FfnWorker&) = delete;

 private:
  void run();
  const Step3Model<float>& model_;
  Transport& transport_;
  std::thread thread_;
};

}  // namespace stepwise
