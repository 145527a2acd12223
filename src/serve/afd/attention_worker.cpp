// AttentionWorker: micro-batch split, the per-layer ping-pong schedule, paged attention and the logits gather.
#include "serve/afd/attention_worker.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/error.h"
#include "ops/paged_attention.h"

namespace stepwise {

struct AttentionWorker::MicroBatch {
  std::vector<const StepSeq*> seqs;
  int64_t n = 0;                       // token rows
  std::vector<int32_t> tokens, pos;    // (n)
  std::vector<float> x, h, q, k, v, att, ffn_out;   // (n, C) (n, C) (n, H*D) (n, D) (n, D) (n, H*D) (n, C)
  std::vector<int32_t> ids;            // (n, K)
  std::vector<float> weights;          // (n, K)
  std::vector<int32_t> table;          // (S, max_blocks)
  std::vector<int64_t> q_start, pos0;  // (S + 1), (S)
  int64_t max_blocks = 0;
};

AttentionWorker::AttentionWorker(const Step3Model<float>& model, KvPool& pool, Transport* transport,
                                 int64_t micro_batches, AfdStats& stats)
    : model_(model), pool_(pool), transport_(transport), micro_batches_(std::max<int64_t>(1, micro_batches)),
      stats_(stats) {}

void AttentionWorker::attention_layer(int64_t layer, MicroBatch& mb) {
  const Step3Config& cfg = model_.config();
  const int64_t H = cfg.num_attention_heads, D = cfg.head_dim;
  model_.infer_attention_qkv(layer, mb.x.data(), mb.pos.data(), mb.n, mb.q.data(), mb.k.data(), mb.v.data());
  int64_t r = 0;
  for (const StepSeq* s : mb.seqs) {
    pool_.write(layer, *s->blocks, s->pos0, s->n, mb.k.data() + r * D, mb.v.data() + r * D);
    r += s->n;
  }
  PagedAttentionParams<float> p;
  p.out = mb.att.data();
  p.q = mb.q.data();
  p.k_pool = pool_.k(layer);
  p.v_pool = pool_.v(layer);
  p.block_table = mb.table.data();
  p.q_start = mb.q_start.data();
  p.pos0 = mb.pos0.data();
  p.S = static_cast<int64_t>(mb.seqs.size());
  p.max_blocks = mb.max_blocks;
  p.block_size = pool_.block_size();
  p.num_blocks = pool_.num_blocks();
  p.H = H;
  p.D = D;
  cpu::paged_attention_forward(p);
  model_.infer_attention_out(layer, mb.att.data(), mb.n, mb.x.data(), mb.h.data(), mb.ids.data(),
                             mb.weights.data());
}

void AttentionWorker::ffn_dispatch(int64_t layer, int64_t index, MicroBatch& mb) {
  const bool moe = model_.config().moe_layer_mask()[static_cast<size_t>(layer)];
  if (!transport_) {
    model_.infer_ffn(layer, mb.h.data(), moe ? mb.ids.data() : nullptr, moe ? mb.weights.data() : nullptr, mb.n,
                     mb.ffn_out.data());
    return;
  }
  FfnWork w;
  w.step = step_;
  w.layer = layer;
  w.micro_batch = index;
  w.n = mb.n;
  w.hidden = mb.h;
  if (moe) {
    w.ids = mb.ids;
    w.weights = mb.weights;
  }
  transport_->send_work(std::move(w));
}

void AttentionWorker::ffn_collect(int64_t layer, int64_t index, MicroBatch& mb) {
  if (transport_) {
    auto match = [&](const FfnResult& r) { return r.layer == layer && r.micro_batch == index; };
    auto it = std::find_if(early_.begin(), early_.end(), match);
    FfnResult got;
    if (it != early_.end()) {
      got = std::move(*it);
      early_.erase(it);
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      for (;;) {
        FfnResult r = transport_->recv_result();
        if (r.step != step_) continue;   // a late answer to a step that failed: nobody waits for it any more
        if (match(r)) {
          got = std::move(r);
          break;
        }
        early_.push_back(std::move(r));
      }
      stats_.add_attention_wait(layer, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    if (!got.error.empty()) fail("FFN worker failed on layer ", layer, ": ", got.error);
    stats_.add_ffn_wait(layer, got.wait_seconds);
    if (got.out.size() != mb.ffn_out.size())
      fail("FFN result of layer ", layer, " has ", got.out.size(), " values, expected ", mb.ffn_out.size());
    mb.ffn_out = std::move(got.out);
  }
  for (size_t i = 0; i < mb.x.size(); ++i) mb.x[i] += mb.ffn_out[i];
}

std::vector<float> AttentionWorker::forward(const std::vector<StepSeq>& seqs) {
  const Step3Config& cfg = model_.config();
  const int64_t C = cfg.hidden_size, H = cfg.num_attention_heads, D = cfg.head_dim, K = cfg.moe_top_k;
  const int64_t L = cfg.num_hidden_layers, V = cfg.vocab_size;
  int64_t total = 0;
  for (const StepSeq& s : seqs) total += s.n;
  if (seqs.empty()) return {};

  // split the sequences into contiguous micro-batches of about total / m tokens each
  const int64_t m = std::min<int64_t>(micro_batches_, static_cast<int64_t>(seqs.size()));
  std::vector<MicroBatch> mbs(static_cast<size_t>(m));
  {
    int64_t done = 0, b = 0;
    for (size_t i = 0; i < seqs.size(); ++i) {
      const int64_t left_seqs = static_cast<int64_t>(seqs.size() - i);
      if (b + 1 < m && !mbs[static_cast<size_t>(b)].seqs.empty() &&
          (done >= total * (b + 1) / m || left_seqs <= m - 1 - b))
        ++b;
      mbs[static_cast<size_t>(b)].seqs.push_back(&seqs[i]);
      done += seqs[i].n;
    }
  }
  for (MicroBatch& mb : mbs) {
    for (const StepSeq* s : mb.seqs) {
      if (s->n <= 0 || !s->tokens || !s->blocks) fail("AttentionWorker: a step sequence needs tokens and blocks");
      mb.max_blocks = std::max(mb.max_blocks, pool_.blocks_for(s->pos0 + s->n));
    }
    mb.q_start.push_back(0);
    for (const StepSeq* s : mb.seqs) {
      for (int64_t i = 0; i < s->n; ++i) {
        mb.tokens.push_back(s->tokens[i]);
        mb.pos.push_back(static_cast<int32_t>(s->pos0 + i));
      }
      mb.n += s->n;
      mb.q_start.push_back(mb.n);
      mb.pos0.push_back(s->pos0);
      const int64_t need = pool_.blocks_for(s->pos0 + s->n);
      if (static_cast<int64_t>(s->blocks->size()) < need)
        fail("AttentionWorker: a sequence at length ", s->pos0 + s->n, " holds only ", s->blocks->size(), " blocks");
      for (int64_t b = 0; b < mb.max_blocks; ++b)   // padding entries are never read (beyond the sequence)
        mb.table.push_back((*s->blocks)[static_cast<size_t>(std::min(b, need - 1))]);
    }
    const size_t n = static_cast<size_t>(mb.n);
    mb.x.resize(n * C);
    mb.h.resize(n * C);
    mb.ffn_out.resize(n * C);
    mb.q.resize(n * H * D);
    mb.att.resize(n * H * D);
    mb.k.resize(n * D);
    mb.v.resize(n * D);
    mb.ids.assign(n * std::max<int64_t>(K, 1), 0);
    mb.weights.assign(n * std::max<int64_t>(K, 1), 0.0f);
    model_.infer_embed(mb.tokens.data(), mb.n, mb.x.data());
  }

  // ping-pong: layer l of micro-batch i waits only for layer l-1 of the same micro-batch
  ++step_;
  early_.clear();
  for (int64_t l = 0; l < L; ++l)
    for (int64_t i = 0; i < m; ++i) {
      MicroBatch& mb = mbs[static_cast<size_t>(i)];
      if (l > 0) ffn_collect(l - 1, i, mb);
      attention_layer(l, mb);
      ffn_dispatch(l, i, mb);
    }
  for (int64_t i = 0; i < m; ++i) ffn_collect(L - 1, i, mbs[static_cast<size_t>(i)]);

  // logits of the requested rows, in sequence order
  std::vector<float> rows_x;
  for (const MicroBatch& mb : mbs) {
    int64_t r = 0;
    for (const StepSeq* s : mb.seqs) {
      const int64_t first = s->all_logits ? r : r + s->n - 1;
      rows_x.insert(rows_x.end(), mb.x.begin() + first * C, mb.x.begin() + (r + s->n) * C);
      r += s->n;
    }
  }
  const int64_t rows = static_cast<int64_t>(rows_x.size()) / C;
  std::vector<float> logits(static_cast<size_t>(rows * V));
  model_.infer_logits(rows_x.data(), rows, logits.data());
  return logits;
}

}  // namespace stepwise
