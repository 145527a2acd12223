// Stage dpo: the policy (TrainingRun's model, started from the init_from SFT checkpoint) trained on preference pairs
// with the DPO, IPO or SimPO loss (losses.h). The reference is the init_from checkpoint: its sequence log-probs are
// either computed once per pair before training and cached in output.dir/reference_logps.json (dpo.reference:
// precompute), or computed each step by a frozen copy (frozen). SimPO uses no reference.
#pragma once
#include <memory>
#include <utility>
#include <vector>

#include "train/losses.h"
#include "train/preference_trainer.h"
#include "train/training_run.h"

namespace stepwise {

// Forward of `model` over a pair batch; per example, the (chosen, rejected) sequence log-probs (sums over reply
// tokens). Rows [0, n) are chosen, [n, 2n) rejected.
template <class T>
std::vector<std::pair<double, double>> pair_sequence_logps(Step3Model<T>& model, const TokenBatch& batch);

// Per-token weights for Step3Model::backward from per-row dL/d(sequence log-prob): loss[t] = -log p(target t), so
// dloss[t] = -d_row[b] * scale on each target t of row b, 0 elsewhere. (B*T)
template <class T>
std::vector<T> sequence_grad_to_dloss(const TokenBatch& batch, const std::vector<double>& d_row, double scale);

// One preference-loss pass of the policy over a pair batch given the reference log-probs per example (ignored by
// simpo): the per-pair losses and rewards, and when grad_scale > 0 the gradient of grad_scale * sum of pair losses
// (+ aux_weight * MoE aux loss) accumulated into the policy. Also returns each reply's mean token log-prob.
struct DpoPair {
  PairLoss loss;
  PairLogps logps;
};
template <class T>
std::vector<DpoPair> dpo_forward_backward(Step3Model<T>& policy, const TokenBatch& batch,
                                          const std::vector<std::pair<double, double>>& reference,
                                          const PreferenceLossConfig& cfg, double grad_scale, double aux_weight);

std::unique_ptr<PairObjective> make_dpo_objective(const RecipeConfig& recipe, TrainingRun& run);

}  // namespace stepwise
