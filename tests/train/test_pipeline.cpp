// `stepwise run` end to end on a slice of the committed corpus and a tiny model: tokenizer -> pretrain -> SFT -> DPO
// -> convert -> eval -> report; a second run skips every finished step; a changed eval.limit re-evaluates without
// retraining; a stage whose dataset has the wrong format fails before any stage trains.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/fs.h"
#include "preference_fixture.h"

namespace stepwise::test {
namespace {

struct PipelineFixture {
  fs::path dir = fs::temp_directory_path() / "stepwise_test_pipeline";

  PipelineFixture() {
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_file_atomic(dir / "pretrain.jsonl", corpus_head("pretrain.jsonl", 150));
    write_file_atomic(dir / "sft.jsonl", corpus_head("sft.jsonl", 300));
    write_file_atomic(dir / "preference.jsonl", corpus_head("preference.jsonl", 160));
    write_file_atomic(dir / "mcq.jsonl", corpus_head("eval_mcq.jsonl", 10));
    write_file_atomic(dir / "qa.jsonl", corpus_head("eval_qa.jsonl", 10));
    write_file_atomic(dir / "model.yaml",
                      "hidden_size: 32\nnum_hidden_layers: 2\nnum_attention_heads: 2\nnum_attention_groups: 1\n"
                      "head_dim: 16\nshare_q_dim: 24\nintermediate_size: 64\nmoe_layers_enum: \"1\"\n"
                      "moe_num_experts: 4\nmoe_top_k: 2\nmoe_intermediate_size: 32\nshare_expert_dim: 32\n"
                      "vocab_size: 3000\nrope_theta: 10000\nmax_position_embedding: 512\n");
    write_recipe("pretrain", "pretrain.jsonl", 4);
    write_recipe("sft", "sft.jsonl", 4);
    write_recipe("dpo", "preference.jsonl", 3);
  }

  // A stage recipe; the pipeline sets its output dir, tokenizer, cache and init_from.
  void write_recipe(const std::string& stage, const std::string& data, int steps, const std::string& name = "") const {
    write_file_atomic(dir / ((name.empty() ? stage : name) + ".yaml"),
                      cat("stage: ", stage, "\nmodel: ", (dir / "model.yaml").string(), "\ndata:\n  train: ",
                          (dir / data).string(), "\n  tokenizer: set-by-pipeline\n  seq_len: 96\n  eval_samples: 8\n",
                          "train:\n  micro_batch: 4\n  max_steps: ", steps, "\n  warmup_steps: 1\n  lr: 3.0e-3\n",
                          "  eval_every: ", steps, "\noutput:\n  dir: set-by-pipeline\n  save_every: ", steps, "\n"));
  }

  fs::path write_pipeline(const std::string& name, const std::string& dpo_recipe = "dpo") const {
    const fs::path file = dir / (name + ".yaml");
    const std::string d = dir.string() + "/";
    write_file_atomic(file, cat("output_dir: ", d, "run-", name, "\ntokenizer:\n  inputs: [", d, "pretrain.jsonl, ", d,
                                "sft.jsonl, ", d, "preference.jsonl]\n  vocab_size: 3000\nstages:\n",
                                "  - {name: base, recipe: ", d, "pretrain.yaml}\n  - {name: sft, recipe: ", d,
                                "sft.yaml}\n  - {name: dpo, recipe: ", d, dpo_recipe, ".yaml}\neval:\n  benchmarks: [",
                                d, "mcq.jsonl, ", d, "qa.jsonl]\n  limit: 3\n  concurrency: 4\n  preference: ", d,
                                "preference.jsonl\n  preference_pairs: 16\n"));
    return file;
  }

  static CommandResult run(const fs::path& pipeline, const std::string& extra = "") {
    return run_command(cat(STEPWISE_BINARY, " run ", pipeline.string(), " ", extra));
  }
};

int64_t evaluated_items(const fs::path& report_json) {
  return nlohmann::json::parse(read_file(report_json)).at("meta").at("items").get<int64_t>();
}

TEST(Pipeline, RunsEveryStageThenSkipsFinishedWorkAndReevaluatesOnChange) {
  PipelineFixture f;
  const fs::path pipeline = f.write_pipeline("ok");
  const fs::path out = f.dir / "run-ok";
  CommandResult r = PipelineFixture::run(pipeline);
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string report = read_file(out / "report.md");
  for (const char* row : {"| base | pretrain | 4 |", "| sft | sft | 4 |", "| dpo | dpo | 3 |"})
    EXPECT_NE(report.find(row), std::string::npos) << row << "\n" << report;
  // held-out preference accuracy overall and per kind of rejected reply (the corpus labels each pair's `reason`)
  const size_t header = report.find("| model | accuracy | margin |");
  ASSERT_NE(header, std::string::npos) << report;
  const std::string header_line = report.substr(header, report.find('\n', header) - header);
  int kinds = 0;
  for (const char* kind : {"wrong_fact", "unsafe", "evasive", "incomplete", "risky_advice"})
    kinds += header_line.find(cat(" ", kind, " |")) != std::string::npos;
  EXPECT_GE(kinds, 2) << header_line;
  EXPECT_NE(r.output.find("sft.yaml from " + (out / "base" / "checkpoint-4").string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("dpo.yaml from " + (out / "sft" / "checkpoint-4").string()), std::string::npos) << r.output;
  const fs::path mcq_report = out / "eval" / "sft" / "mcq" / "report.json";
  EXPECT_EQ(evaluated_items(mcq_report), 3);
  const auto evaluated_at = fs::last_write_time(mcq_report);

  r = PipelineFixture::run(pipeline);  // everything is finished: nothing is trained or evaluated again
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* stage : {"base", "sft", "dpo"})
    EXPECT_NE(r.output.find(cat("stage ", stage, ": complete")), std::string::npos) << stage << "\n" << r.output;
  EXPECT_EQ(fs::last_write_time(mcq_report), evaluated_at);
  const std::string again = read_file(out / "report.md");
  EXPECT_EQ(again.substr(again.find("\n## mcq.jsonl")), report.substr(report.find("\n## mcq.jsonl")));  // same results
  EXPECT_NE(again.find("| dpo | dpo | 3 | 0.693"), std::string::npos) << again;  // curves read from the earlier run

  r = PipelineFixture::run(pipeline, "eval.limit=5");  // a changed setting re-evaluates, still without training
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("stage dpo: complete"), std::string::npos) << r.output;
  EXPECT_EQ(evaluated_items(mcq_report), 5);
  EXPECT_EQ(evaluated_items(out / "eval" / "base" / "qa" / "report.json"), 5);
}

TEST(Pipeline, DatasetOfTheWrongFormatFailsBeforeAnyStageTrains) {
  PipelineFixture f;
  f.write_recipe("dpo", "sft.jsonl", 3, "dpo_on_sft");  // conversations without chosen / rejected
  const CommandResult r = PipelineFixture::run(f.write_pipeline("bad", "dpo_on_sft"));
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("sft.jsonl"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(f.dir / "run-bad" / "base")) << r.output;
}

}  // namespace
}  // namespace stepwise::test
