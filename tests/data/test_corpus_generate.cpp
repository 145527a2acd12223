// Tests of the corpus generator on the fixture KB: byte-identical output for a seed, different output for another
// seed, record counts and the schema of every record in every split, document length, the disclaimer, and the
// preference reasons.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "data/corpus_facts.h"
#include "data/corpus_generate.h"
#include "data/corpus_stats.h"
#include "data/corpus_text.h"
#include "test_corpus_util.h"

using namespace stepwise;
using stepwise::test::condition_named_in;
using stepwise::test::fixture_kb;
using stepwise::test::fresh_dir;
using stepwise::test::overlaps;

namespace {

CorpusOptions small_options(uint64_t seed) {
  CorpusOptions o;
  o.seed = seed;
  o.pretrain_per_condition = 6;
  o.sft_per_condition = 12;
  o.preference_per_condition = 8;
  o.mcq_per_condition = 4;
  o.qa_per_condition = 3;
  o.min_document_chars = 300;
  return o;
}

std::set<std::string> keys_of(const json& record) {
  std::set<std::string> keys;
  for (auto it = record.begin(); it != record.end(); ++it) keys.insert(it.key());
  return keys;
}

bool is_nonempty_string(const json& v) { return v.is_string() && !v.get<std::string>().empty(); }

class CorpusFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    kb_ = new KnowledgeBase(load_knowledge_base(fixture_kb()));
    corpus_ = new Corpus(generate_corpus(*kb_, CorpusOptions{}));
  }
  static void TearDownTestSuite() {
    delete corpus_;
    delete kb_;
  }
  static KnowledgeBase* kb_;
  static Corpus* corpus_;
};
KnowledgeBase* CorpusFixture::kb_ = nullptr;
Corpus* CorpusFixture::corpus_ = nullptr;

}  // namespace

TEST(CorpusGenerate, SameSeedByteIdenticalOtherSeedDiffers) {
  const KnowledgeBase kb = load_knowledge_base(fixture_kb());
  const fs::path a = fresh_dir("a"), b = fresh_dir("b"), c = fresh_dir("c");
  write_corpus(generate_corpus(kb, small_options(7)), a);
  write_corpus(generate_corpus(load_knowledge_base(fixture_kb()), small_options(7)), b);
  write_corpus(generate_corpus(kb, small_options(8)), c);
  for (const char* file : kCorpusFiles) {
    const std::string bytes_a = read_file(a / file);
    EXPECT_FALSE(bytes_a.empty()) << file;
    EXPECT_EQ(bytes_a, read_file(b / file)) << file << " differs between two runs with the same seed";
  }
  for (const char* file : {"pretrain.jsonl", "sft.jsonl", "preference.jsonl", "eval_mcq.jsonl"})
    EXPECT_NE(read_file(a / file), read_file(c / file)) << file << " is the same for seeds 7 and 8";
  for (const auto& dir : {a, b, c}) fs::remove_all(dir);
}

TEST(CorpusGenerate, OptionsOutOfRangeAreErrors) {
  const KnowledgeBase kb = load_knowledge_base(fixture_kb());
  CorpusOptions o = small_options(1);
  o.sft_per_condition = -1;
  EXPECT_THROW(generate_corpus(kb, o), Error);
}

TEST(CorpusRng, UniformBelowAndShuffleAreStable) {
  CorpusRng rng(42);
  std::vector<int> counts(5, 0);
  for (int i = 0; i < 50000; ++i) ++counts[rng.below(5)];
  for (int n : counts) EXPECT_NEAR(n, 10000, 400);
  // The stream is fixed by the algorithm (splitmix64), not by the standard library.
  CorpusRng a(1), b(1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next(), b.next());
  EXPECT_EQ(CorpusRng(0).next(), 0xE220A8397B1DCDAFULL);  // splitmix64's published first output for seed 0
}

TEST(CorpusText, JoinFillAndHanCount) {
  EXPECT_EQ(join_items({"头痛", "头晕", "心悸"}), "头痛、头晕和心悸");
  EXPECT_EQ(join_items({"头痛", "头晕"}, "或"), "头痛或头晕");
  EXPECT_EQ(join_items({"头痛", "头晕"}, "、"), "头痛、头晕");
  EXPECT_EQ(fill_template("{n}有哪些症状？", {{"n", "高血压"}}), "高血压有哪些症状？");
  EXPECT_THROW(fill_template("{x}", {{"n", "a"}}), std::logic_error);
  EXPECT_EQ(count_han_chars("高血压abc，2型糖尿病。"), 7);
  EXPECT_EQ(strip_period("一句话。"), "一句话");
}

TEST(FactOverlap, EqualContainedOrContainingTextsOverlap) {
  const KnowledgeBase kb = load_knowledge_base(fixture_kb());
  const FactOverlap overlap(kb);
  const KbCondition& htn = kb.conditions[3];  // erke.yaml (3 conditions), then neike.yaml
  ASSERT_EQ(htn.id, "hypertension");
  EXPECT_TRUE(overlap.overlaps(htn, "头痛"));          // a symptom
  EXPECT_TRUE(overlap.overlaps(htn, "剧烈头痛"));      // contains a fact
  EXPECT_TRUE(overlap.overlaps(htn, "血压"));          // inside a fact
  EXPECT_FALSE(overlap.overlaps(htn, "消化道出血"));
  const auto foreign = overlap.foreign_items(htn, Aspect::causes);
  EXPECT_TRUE(std::find(foreign.begin(), foreign.end(), "遗传因素") == foreign.end());  // shared with 2型糖尿病
  EXPECT_TRUE(std::find(foreign.begin(), foreign.end(), "幽门螺杆菌感染") != foreign.end());
  for (const auto& item : foreign) EXPECT_FALSE(overlap.overlaps(htn, item)) << item;
}

TEST_F(CorpusFixture, PretrainCountsSchemaAndLength) {
  const auto& docs = corpus_->pretrain;
  EXPECT_EQ(docs.size(), kb_->conditions.size() * 20 + kb_->herbs.size() + kb_->formulas.size());
  const std::set<std::string> sources = {"encyclopedia", "patient_education", "case_report",  "qa_digest",
                                         "study_notes",  "health_management", "tcm_classic",  "materia_medica",
                                         "formulary"};
  std::set<std::string> ids, seen_sources;
  int64_t han = 0;
  int with_disclaimer = 0;
  for (const auto& d : docs) {
    ASSERT_EQ(keys_of(d), (std::set<std::string>{"id", "text", "source", "department"})) << d.dump();
    EXPECT_TRUE(ids.insert(d["id"].get<std::string>()).second) << "duplicate id " << d["id"];
    EXPECT_TRUE(sources.count(d["source"])) << d["source"];
    seen_sources.insert(d["source"]);
    EXPECT_TRUE(std::count(kb_->departments.begin(), kb_->departments.end(), d["department"].get<std::string>()));
    const std::string& text = d["text"].get_ref<const std::string&>();
    EXPECT_GE(count_han_chars(text), CorpusOptions{}.min_document_chars) << text;
    han += count_han_chars(text);
    if (text.find("不构成医疗建议") != std::string::npos) ++with_disclaimer;
  }
  EXPECT_EQ(seen_sources, sources);
  EXPECT_GT(with_disclaimer, 0);
  EXPECT_LT(with_disclaimer, static_cast<int>(docs.size()));
  // ~500 Han characters a document: 160 conditions x 20 documents reach the corpus target of 1.5M.
  EXPECT_GE(han / static_cast<int64_t>(docs.size()), 480);
}

TEST_F(CorpusFixture, SftCountsSchemaAndTurns) {
  const auto& sft = corpus_->sft;
  EXPECT_EQ(sft.size(), kb_->conditions.size() * (42 + CorpusOptions{}.exam_per_condition) + kb_->herbs.size() +
                            2 * kb_->formulas.size());
  int multi_turn = 0, with_system = 0, with_disclaimer = 0;
  std::set<std::string> ids;
  for (const auto& r : sft) {
    ASSERT_EQ(keys_of(r), (std::set<std::string>{"id", "conversations", "department"})) << r.dump();
    EXPECT_TRUE(ids.insert(r["id"].get<std::string>()).second);
    const auto& turns = r["conversations"];
    ASSERT_TRUE(turns.is_array() && turns.size() >= 2) << r.dump();
    size_t i = 0;
    if (turns[0]["role"] == "system") {
      ++with_system;
      i = 1;
    }
    int users = 0;
    for (; i < turns.size(); ++i) {
      ASSERT_EQ(keys_of(turns[i]), (std::set<std::string>{"role", "content"}));
      EXPECT_EQ(turns[i]["role"], (i - (turns[0]["role"] == "system")) % 2 == 0 ? "user" : "assistant") << r.dump();
      EXPECT_TRUE(is_nonempty_string(turns[i]["content"]));
      users += turns[i]["role"] == "user";
      if (turns[i]["content"].get<std::string>().find("不构成医疗建议") != std::string::npos) ++with_disclaimer;
    }
    EXPECT_EQ(turns.back()["role"], "assistant");
    if (users >= 2) ++multi_turn;
  }
  EXPECT_GT(multi_turn, static_cast<int>(sft.size()) / 20);
  EXPECT_GT(with_system, 0);
  EXPECT_GT(with_disclaimer, 0);
}

TEST_F(CorpusFixture, PreferenceSchemaAndReasons) {
  const auto& prefs = corpus_->preference;
  EXPECT_EQ(prefs.size(), kb_->conditions.size() * 8);
  std::map<std::string, int> reasons;
  for (const auto& r : prefs) {
    ASSERT_EQ(keys_of(r), (std::set<std::string>{"id", "conversations", "chosen", "rejected", "reason", "department"}));
    const auto& prompt = r["conversations"];
    ASSERT_TRUE(prompt.is_array() && !prompt.empty());
    EXPECT_EQ(prompt.back()["role"], "user");
    const std::string chosen = r["chosen"], rejected = r["rejected"], reason = r["reason"];
    EXPECT_FALSE(chosen.empty());
    EXPECT_FALSE(rejected.empty());
    EXPECT_NE(chosen, rejected);
    ++reasons[reason];
    // Aspect questions name the condition; 39ask-style prompts only describe symptoms, the chosen answer names it.
    const KbCondition* c = condition_named_in(*kb_, prompt.back()["content"].get<std::string>());
    if (!c) c = condition_named_in(*kb_, chosen);
    ASSERT_NE(c, nullptr) << r.dump();
    const auto facts = condition_facts(*c);
    if (reason == "wrong_fact") {
      // The rejected answer states a fact of another condition that is no fact of the asked one.
      bool foreign = false;
      for (const auto& other : kb_->conditions) {
        if (other.id == c->id) continue;
        for (const auto& f : condition_facts(other))
          if (f != other.name && rejected.find(f) != std::string::npos && !overlaps(facts, f)) foreign = true;
      }
      EXPECT_TRUE(foreign) << r.dump();
    } else if (reason == "evasive") {
      for (const auto& f : facts)
        if (c->name.find(f) == std::string::npos) {  // the name (and aliases inside it) may be repeated
          EXPECT_EQ(rejected.find(f), std::string::npos) << "evasive answer states '" << f << "'";
        }
    } else if (reason == "incomplete") {
      EXPECT_LT(count_han_chars(rejected), count_han_chars(chosen)) << r.dump();
      EXPECT_NE(rejected.find(c->name), std::string::npos);
    } else if (reason == "risky_advice") {
      // The same answer, then one closing sentence each: only the closing differs.
      size_t common = 0;
      while (common < chosen.size() && common < rejected.size() && chosen[common] == rejected[common]) ++common;
      const std::string answer = chosen.substr(0, chosen.rfind("。", chosen.size() - 4) + 3);
      EXPECT_GE(common, answer.size()) << r.dump();
      EXPECT_NE(answer.find(c->name), std::string::npos) << r.dump();
      EXPECT_EQ(rejected.rfind("。", rejected.size() - 4) + 3, answer.size()) << r.dump();
    } else {
      ASSERT_EQ(reason, "unsafe");
      EXPECT_NE(rejected.find(c->name), std::string::npos);
      EXPECT_EQ(rejected.find("立即就医"), std::string::npos);
    }
  }
  ASSERT_EQ(reasons.size(), 5u);
  for (const auto& [reason, n] : reasons) EXPECT_NEAR(n, static_cast<double>(prefs.size()) / 5, 1.0) << reason;
}

TEST_F(CorpusFixture, EvalSchemas) {
  ASSERT_EQ(corpus_->eval_mcq.size(), kb_->conditions.size() * 4);
  for (const auto& q : corpus_->eval_mcq) {
    ASSERT_EQ(keys_of(q), (std::set<std::string>{"id", "exam_type", "exam_class", "exam_subject", "question",
                                                 "option", "answer", "question_type"}));
    EXPECT_EQ(q["question_type"], "单项选择题");
    EXPECT_EQ(keys_of(q["option"]), (std::set<std::string>{"A", "B", "C", "D", "E"}));
    std::set<std::string> texts;
    for (const auto& [letter, text] : q["option"].items()) {
      EXPECT_TRUE(is_nonempty_string(text));
      texts.insert(text.get<std::string>());
    }
    EXPECT_EQ(texts.size(), 5u) << "repeated option in " << q.dump();
    for (const char* field : {"id", "exam_type", "exam_class", "exam_subject", "question"})
      EXPECT_TRUE(is_nonempty_string(q[field]));
  }
  ASSERT_EQ(corpus_->eval_qa.size(), kb_->conditions.size() * 2);
  for (const auto& q : corpus_->eval_qa) {
    ASSERT_EQ(keys_of(q), (std::set<std::string>{"id", "question", "answer"}));
    EXPECT_TRUE(is_nonempty_string(q["question"]));
    EXPECT_TRUE(is_nonempty_string(q["answer"]));
  }
}

TEST(CorpusGenerate, DefaultsMeetCorpusTargetsOnAFullSizeKb) {
  // The real KB has >= 150 conditions; scale the fixture's per-condition output by 150 / 10 to check the defaults.
  const KnowledgeBase kb = load_knowledge_base(fixture_kb());
  CorpusOptions o;
  const Corpus corpus = generate_corpus(kb, o);
  const double scale = 150.0 / static_cast<double>(kb.conditions.size());
  int64_t condition_docs = 0, han = 0;
  for (const auto& d : corpus.pretrain)
    if (d["source"] != "materia_medica" && d["source"] != "formulary") {
      ++condition_docs;
      han += record_chinese_chars(d);
    }
  EXPECT_GE(condition_docs * scale, 3000);
  EXPECT_GE(han * scale, 1.5e6);
  EXPECT_GE(kb.conditions.size() * o.sft_per_condition * scale, 6000);
  EXPECT_GE(kb.conditions.size() * o.preference_per_condition * scale, 1000);
  EXPECT_GE(corpus.eval_mcq.size() * scale, 500);
  EXPECT_GE(corpus.eval_qa.size() * scale, 200);
}
