// The eval runner end to end through the in-process engine on a tiny random checkpoint: likelihood scores equal
// option log-probs computed directly with the model's training forward, generation replies equal direct greedy
// decoding, QA replies too, reports round-trip through write_report / read_report, and runs are deterministic.
#include <gtest/gtest.h>

#include <fstream>

#include "data/chat_template.h"
#include "eval/runner.h"
#include "eval/runner_engine.h"
#include "eval/runner_fixture.h"

namespace stepwise::eval {
namespace {

using testing::runner_files;
using testing::runner_model;

EngineBackend& backend() {
  static EngineBackend b = [] {
    EngineOptions o;
    o.model_dir = runner_files().checkpoint;
    o.prefill_chunk = 64;
    return EngineBackend(o, 8);
  }();
  return b;
}

EvalOptions options(const fs::path& bench, MethodChoice methods, PromptStyle style) {
  EvalOptions o;
  o.bench = bench;
  o.methods = methods;
  o.prompt_style = style;
  o.progress = false;
  return o;
}

// The context tokens as the model should see them, built here from the chat template / tokenizer directly.
std::vector<int32_t> context_ids(const Tokenizer& tok, const std::string& text, PromptStyle style) {
  if (style == PromptStyle::chat) return render_prompt(tok, {{ChatRole::user, text}});
  return tok.encode_literal(text);
}

class RunnerStyle : public ::testing::TestWithParam<PromptStyle> {};

TEST_P(RunnerStyle, LikelihoodEqualsDirectOptionLogProbs) {
  const PromptStyle style = GetParam();
  const EvalReport report = run_eval(backend(), options(runner_files().mcq, MethodChoice::likelihood, style));
  ASSERT_TRUE(report.mcq_likelihood.has_value());
  EXPECT_FALSE(report.mcq_generation.has_value());
  const std::vector<McqItem> items = load_mcq_benchmark(runner_files().mcq);
  ASSERT_EQ(report.mcq_records.size(), items.size());

  ServingModel& served = runner_model();
  int64_t correct = 0, scored = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const McqItem& item = items[i];
    const McqRecord& record = report.mcq_records[i];
    EXPECT_EQ(record.id, item.id);
    const std::string prompt = mcq_prompt(item);
    const std::vector<int32_t> context = context_ids(served.tokenizer, prompt, style);
    std::vector<double> direct;
    for (const McqOption& option : item.options) {
      std::vector<int32_t> full = context_ids(served.tokenizer, prompt, style);
      if (style == PromptStyle::plain) {
        full = served.tokenizer.encode_literal(prompt + option.letter);
      } else {
        const std::vector<int32_t> letter = served.tokenizer.encode_literal(std::string(1, option.letter));
        full.insert(full.end(), letter.begin(), letter.end());
      }
      ASSERT_GT(full.size(), context.size());
      ASSERT_TRUE(std::equal(context.begin(), context.end(), full.begin())) << "context is not a token prefix";
      direct.push_back(testing::direct_logprob(*served.model, full, context.size()));
    }
    ASSERT_EQ(record.option_scores.size(), direct.size());
    size_t best = 0;
    for (size_t k = 0; k < direct.size(); ++k) {
      EXPECT_NEAR(record.option_scores[k], direct[k], 1e-3 * (1.0 + std::abs(direct[k]))) << item.id << " option " << k;
      if (direct[k] > direct[best]) best = k;
    }
    if (item.type == QuestionType::multi_choice) {
      EXPECT_FALSE(record.scored);
      continue;
    }
    const std::string predicted(1, item.options[best].letter);
    EXPECT_EQ(record.predicted, predicted) << item.id;
    ++scored;
    correct += predicted == item.answer;
  }
  EXPECT_EQ(report.mcq_likelihood->overall.total, scored);
  EXPECT_EQ(report.mcq_likelihood->overall.correct, correct);
  EXPECT_EQ(report.mcq_likelihood->not_scored, 1);
  EXPECT_EQ(report.mcq_likelihood->by_subject.size(), 2u);
}

TEST_P(RunnerStyle, GenerationEqualsDirectGreedyDecoding) {
  const PromptStyle style = GetParam();
  EvalOptions o = options(runner_files().mcq, MethodChoice::generation, style);
  o.max_tokens = 10;
  const EvalReport report = run_eval(backend(), o);
  ASSERT_TRUE(report.mcq_generation.has_value());
  EXPECT_FALSE(report.mcq_likelihood.has_value());
  const std::vector<McqItem> items = load_mcq_benchmark(runner_files().mcq);
  ASSERT_EQ(report.mcq_records.size(), items.size());
  ServingModel& served = runner_model();
  int64_t no_answer = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::vector<int32_t> prompt = context_ids(served.tokenizer, mcq_prompt(items[i]), style);
    const std::vector<int32_t> reply = testing::direct_greedy(*served.model, prompt, 10, served.tokenizer.eot());
    const std::string expected = served.tokenizer.decode(reply);
    const McqRecord& record = report.mcq_records[i];
    EXPECT_EQ(record.output, expected) << items[i].id;
    EXPECT_EQ(record.predicted, extract_answer(expected, items[i].type, items[i].option_letters()).letters);
    no_answer += record.source == ExtractionSource::none;
  }
  EXPECT_EQ(report.mcq_generation->overall.total, static_cast<int64_t>(items.size()));
  EXPECT_EQ(report.mcq_generation->overall.no_answer, no_answer);
}

TEST_P(RunnerStyle, QaRepliesEqualDirectGreedyDecoding) {
  const PromptStyle style = GetParam();
  EvalOptions o = options(runner_files().qa, MethodChoice::both, style);
  o.max_tokens = 12;
  const EvalReport report = run_eval(backend(), o);
  ASSERT_TRUE(report.qa.has_value());
  const std::vector<QaItem> items = load_qa_benchmark(runner_files().qa);
  ASSERT_EQ(report.qa_records.size(), items.size());
  ServingModel& served = runner_model();
  for (size_t i = 0; i < items.size(); ++i) {
    const std::vector<int32_t> prompt = context_ids(served.tokenizer, qa_prompt(items[i], style), style);
    const std::string expected =
        served.tokenizer.decode(testing::direct_greedy(*served.model, prompt, 12, served.tokenizer.eot()));
    EXPECT_EQ(report.qa_records[i].output, expected) << items[i].id;
    EXPECT_DOUBLE_EQ(report.qa_records[i].rouge_l, rouge_l_f1(expected, items[i].answer));
  }
  EXPECT_EQ(report.qa->total, 3);
}

INSTANTIATE_TEST_SUITE_P(Styles, RunnerStyle, ::testing::Values(PromptStyle::chat, PromptStyle::plain),
                         [](const auto& info) { return std::string(prompt_style_name(info.param)); });

TEST(Runner, ReportFilesRoundTripAndRunsAreDeterministic) {
  EvalOptions o = options(runner_files().mcq, MethodChoice::both, PromptStyle::chat);
  o.max_tokens = 8;
  const EvalReport first = run_eval(backend(), o);
  EngineOptions engine;
  engine.model_dir = runner_files().checkpoint;
  EngineBackend serial(engine, 1);  // one request at a time: other batches, same answers
  EvalRunStats stats;
  const EvalReport second = run_eval(serial, o, &stats);
  EXPECT_EQ(first.meta.at("concurrency"), 8);
  EXPECT_EQ(second.meta.at("concurrency"), 1);
  ASSERT_EQ(first.mcq_records.size(), second.mcq_records.size());
  for (size_t i = 0; i < first.mcq_records.size(); ++i) {
    const McqRecord &a = first.mcq_records[i], &b = second.mcq_records[i];
    EXPECT_EQ(a.output, b.output) << a.id;
    EXPECT_EQ(a.predicted, b.predicted) << a.id;
    ASSERT_EQ(a.option_scores.size(), b.option_scores.size());
    for (size_t k = 0; k < a.option_scores.size(); ++k) EXPECT_NEAR(a.option_scores[k], b.option_scores[k], 1e-4);
  }
  EXPECT_EQ(report_to_json(first).at("mcq").dump(), report_to_json(second).at("mcq").dump());
  EXPECT_EQ(stats.items, 6);
  EXPECT_EQ(stats.requests, 6 + 5 * 5 + 4);  // generation + one scoring per option (q4 has four options)

  testing::TempPath out("runner_report");
  write_report(out.path(), first);
  for (const char* name : {"report.json", "report.md", "report.svg", "items.jsonl"})
    EXPECT_TRUE(fs::exists(out.path() / name)) << name;
  const EvalReport back = read_report(out.path() / "report.json");
  EXPECT_EQ(back.model, "tiny-eval-model");
  EXPECT_EQ(back.meta.at("backend"), "engine");
  EXPECT_EQ(back.meta.at("prompt_style"), "chat");
  ASSERT_TRUE(back.mcq_generation && back.mcq_likelihood);
  EXPECT_EQ(back.mcq_likelihood->overall.correct, first.mcq_likelihood->overall.correct);
  EXPECT_EQ(jsonl_read(out.path() / "items.jsonl").size(), 12u);  // six items by both methods
}

TEST(Runner, LimitTakesTheFirstItems) {
  EvalOptions o = options(runner_files().mcq, MethodChoice::likelihood, PromptStyle::plain);
  o.limit = 2;
  const EvalReport report = run_eval(backend(), o);
  ASSERT_EQ(report.mcq_records.size(), 2u);
  EXPECT_EQ(report.mcq_records[0].id, "q1");
  EXPECT_EQ(report.mcq_records[1].id, "q2");
  EXPECT_EQ(report.meta.at("items"), 2);
}

TEST(Runner, OptionTextContinuationsSpanSeveralTokens) {
  EvalOptions o = options(runner_files().mcq, MethodChoice::likelihood, PromptStyle::plain);
  o.continuation = ContinuationStyle::option_text;
  o.length_norm = LengthNorm::per_token;
  o.limit = 1;
  const EvalReport report = run_eval(backend(), o);
  const McqItem item = load_mcq_benchmark(runner_files().mcq).front();
  ServingModel& served = runner_model();
  const std::vector<int32_t> context = served.tokenizer.encode_literal(mcq_prompt(item));
  for (size_t k = 0; k < item.options.size(); ++k) {
    const std::vector<int32_t> full = served.tokenizer.encode_literal(mcq_prompt(item) + item.options[k].text);
    size_t start = 0;
    while (start < context.size() && context[start] == full[start]) ++start;
    const double per_token = testing::direct_logprob(*served.model, full, start) / double(full.size() - start);
    EXPECT_NEAR(report.mcq_records[0].option_scores[k], per_token, 1e-4) << k;
  }
}

TEST(Runner, BadInputsAreErrors) {
  testing::TempPath bad("runner_bad.jsonl");
  {
    std::ofstream out(bad.path());
    out << testing::cmb_record("x", "内科", "A").dump() << "\n{\"id\": \"y\", \"question\": \"q\", \"option\": {}}\n";
  }
  try {
    run_eval(backend(), options(bad.path(), MethodChoice::both, PromptStyle::chat));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad.path().string() + ":2"), std::string::npos) << e.what();
  }
  EvalOptions o = options(runner_files().mcq, MethodChoice::both, PromptStyle::chat);
  o.limit = -1;
  EXPECT_THROW(run_eval(backend(), o), Error);
  EXPECT_THROW(parse_method_choice("greedy"), Error);
  EXPECT_THROW(parse_prompt_style("instruct"), Error);
  EngineOptions engine;
  engine.model_dir = runner_files().checkpoint;
  EXPECT_THROW(EngineBackend(engine, 0), Error);
}

TEST(Runner, PromptTooLongForTheModelIsAnError) {
  EngineOptions engine;
  engine.model_dir = runner_files().checkpoint;
  engine.max_model_len = 16;
  EngineBackend small(engine, 2);
  try {
    run_eval(small, options(runner_files().mcq, MethodChoice::generation, PromptStyle::chat));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_model_len 16"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace stepwise::eval
