// The attention side of one engine step: embeds the step's tokens, runs every layer's attention over the paged KV
// cache, hands each layer's normalised hidden states + routing to the FFN side and adds the FFN output back, then
// computes logits. The batch is split into micro-batches that ping-pong with the FFN side: while the FFN computes
// micro-batch i of a layer, attention computes micro-batch i+1. Without a transport the FFN runs inline (no AFD).
#pragma once
#include <cstdint>
#include <vector>

#include "model/step3_model.h"
#include "serve/afd/afd_stats.h"
#include "serve/afd/transport.h"
#include "serve/kv_pool.h"

namespace stepwise {

// One sequence's share of a step: n new tokens at positions pos0 .. pos0+n-1, written into its reserved blocks.
struct StepSeq {
  const int32_t* tokens = nullptr;            // (n)
  int64_t n = 0;
  int64_t pos0 = 0;                           // tokens already cached
  const std::vector<int32_t>* blocks = nullptr;   // block table (covers pos0 + n tokens at least)
  bool all_logits = false;                    // logits of every new token (prompt logprobs), else of the last one
};

class AttentionWorker {
 public:
  // transport == nullptr: the FFN runs inline on this thread. model, pool, transport and stats must outlive it.
  AttentionWorker(const Step3Model<float>& model, KvPool& pool, Transport* transport, int64_t micro_batches,
                  AfdStats& stats);

  // Runs one step; returns logits (rows, V): per sequence in order, n rows when all_logits, else 1.
  std::vector<float> forward(const std::vector<StepSeq>& seqs);

 private:
  struct MicroBatch;
  void attention_layer(int64_t layer, MicroBatch& mb);
  void ffn_dispatch(int64_t layer, int64_t index, MicroBatch& mb);
  void ffn_collect(int64_t layer, int64_t index, MicroBatch& mb);

  const Step3Model<float>& model_;
  KvPool& pool_;
  Transport* transport_;
  int64_t micro_batches_;
  AfdStats& stats_;
  int64_t step_ = 0;                // this step's number, sent with its FFN work
  std::vector<FfnResult> early_;   // results of this step that arrived before they were waited for
};

}  // namespace stepwise
