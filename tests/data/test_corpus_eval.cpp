// Tests of the held-out eval sets: no eval question appears in any training split, each MCQ's correct option is a
// fact of the asked condition while its distractors are facts of other conditions and of not the asked one, the
// correct letters are balanced over A-E, open answers restate the asked condition's KB facts, and the exam-format SFT
// dialogues are well formed and never ask a (condition, correct fact) that a held-out MCQ asks.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

#include "data/corpus_generate.h"
#include "test_corpus_util.h"

using namespace stepwise;
using nlohmann::json;
using stepwise::test::fixture_kb;
using stepwise::test::fresh_dir;
using stepwise::test::condition_named_in;
using stepwise::test::overlaps;

namespace {

// "mcq-tcm_vertigo-3" -> "tcm_vertigo"
std::string condition_id_of(const std::string& record_id) {
  const size_t first = record_id.find('-'), last = record_id.rfind('-');
  return record_id.substr(first + 1, last - first - 1);
}

const KbCondition& condition_by_id(const KnowledgeBase& kb, const std::string& id) {
  for (const auto& c : kb.conditions)
    if (c.id == id) return c;
  throw std::runtime_error("no condition " + id);
}

class EvalFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    kb_ = new KnowledgeBase(load_knowledge_base(fixture_kb()));
    dir_ = new fs::path(fs::temp_directory_path() / ("stepwise_corpus_eval_" + std::to_string(::getpid())));
    write_corpus(generate_corpus(*kb_, CorpusOptions{}), *dir_);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete kb_;
  }
  static KnowledgeBase* kb_;
  static fs::path* dir_;
};
KnowledgeBase* EvalFixture::kb_ = nullptr;
fs::path* EvalFixture::dir_ = nullptr;

}  // namespace

TEST_F(EvalFixture, NoEvalQuestionAppearsInTraining) {
  const auto training = stepwise::test::training_texts(*dir_);
  ASSERT_GT(training.size(), 1000u);
  std::vector<std::string> questions;
  for (const auto& r : jsonl_read(*dir_ / "eval_mcq.jsonl")) questions.push_back(r["question"]);
  for (const auto& r : jsonl_read(*dir_ / "eval_qa.jsonl")) questions.push_back(r["question"]);
  ASSERT_FALSE(questions.empty());
  for (const auto& q : questions)
    for (const auto& t : training) ASSERT_EQ(t.find(q), std::string::npos) << "eval question '" << q << "' is in: " << t;
}

TEST_F(EvalFixture, McqAnswersAreFactsAndDistractorsAreNot) {
  const auto mcqs = jsonl_read(*dir_ / "eval_mcq.jsonl");
  for (const auto& q : mcqs) {
    const KbCondition& c = condition_by_id(*kb_, condition_id_of(q["id"]));
    EXPECT_NE(q["question"].get<std::string>().find(c.name), std::string::npos) << q.dump();
    const std::string letter = q["answer"];
    ASSERT_TRUE(letter.size() == 1 && letter[0] >= 'A' && letter[0] <= 'E') << letter;
    const auto facts = condition_facts(c);
    const std::string correct = q["option"][letter];
    EXPECT_TRUE(std::find(facts.begin(), facts.end(), correct) != facts.end())
        << "'" << correct << "' is not a fact of " << c.id;
    for (const auto& [l, text] : q["option"].items()) {
      if (l == letter) continue;
      const std::string distractor = text;
      EXPECT_FALSE(overlaps(facts, distractor)) << "distractor '" << distractor << "' overlaps a fact of " << c.id;
      bool from_other = false;
      for (const auto& other : kb_->conditions)
        if (other.id != c.id) {
          const auto of = condition_facts(other);
          from_other |= std::find(of.begin(), of.end(), distractor) != of.end();
        }
      EXPECT_TRUE(from_other) << "distractor '" << distractor << "' is no fact of another condition";
    }
  }
}

TEST_F(EvalFixture, CorrectLettersAreBalanced) {
  const auto mcqs = jsonl_read(*dir_ / "eval_mcq.jsonl");
  std::map<std::string, int> counts;
  for (const auto& q : mcqs) ++counts[q["answer"].get<std::string>()];
  ASSERT_EQ(counts.size(), 5u);
  for (const auto& [letter, n] : counts) {
    EXPECT_GE(n, static_cast<int>(mcqs.size()) / 5) << letter;
    EXPECT_LE(n, static_cast<int>(mcqs.size()) / 5 + 1) << letter;
  }
}

TEST_F(EvalFixture, OpenAnswersRestateKbFacts) {
  for (const auto& q : jsonl_read(*dir_ / "eval_qa.jsonl")) {
    const KbCondition& c = condition_by_id(*kb_, condition_id_of(q["id"]));
    const std::string question = q["question"], answer = q["answer"];
    EXPECT_NE(question.find(c.name), std::string::npos);
    EXPECT_NE(answer.find(c.name), std::string::npos);
    // Every list the answer draws on is stated in full: at least two facts of the condition besides its name.
    int facts_stated = 0;
    for (const auto& f : condition_facts(c))
      if (f != c.name && answer.find(f) != std::string::npos) ++facts_stated;
    EXPECT_GE(facts_stated, 1) << answer;
  }
}

namespace {

// An exam-format SFT dialogue taken apart: instruction line, stem, five options, the answer letter of the reply.
struct ExamDialogue {
  std::string stem;
  std::vector<std::string> options;  // A..E
  char answer = 0;
  std::string reply_option;  // the option text the reply starts with
};

bool parse_exam(const json& conversations, ExamDialogue& out) {
  const std::string user = conversations[conversations.size() - 2]["content"];
  const std::string reply = conversations.back()["content"];
  const std::string suffix = "答案：";
  if (user.size() < suffix.size() || user.compare(user.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  std::vector<std::string> lines;
  std::istringstream in(user);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  if (lines.size() != 8) return false;
  out.stem = lines[1];
  for (int i = 0; i < 5; ++i) {
    const std::string prefix = std::string(1, static_cast<char>('A' + i)) + ". ";
    if (lines[2 + i].rfind(prefix, 0) != 0) return false;
    out.options.push_back(lines[2 + i].substr(prefix.size()));
  }
  // "<correct option>。答案：C。解析：..."
  const std::string key = "。" + suffix;
  const size_t at = reply.find(key);
  if (at == std::string::npos || reply.size() <= at + key.size()) return false;
  out.reply_option = reply.substr(0, at);
  out.answer = reply[at + key.size()];
  return reply.compare(at + key.size() + 1, std::string("。").size(), "。") == 0;
}

}  // namespace

TEST_F(EvalFixture, ExamDialoguesAreTrainingOnlyItems) {
  std::set<std::pair<std::string, std::string>> held_out;  // (condition id, correct option)
  for (const auto& q : jsonl_read(*dir_ / "eval_mcq.jsonl"))
    held_out.emplace(condition_id_of(q["id"]), q["option"][q["answer"].get<std::string>()].get<std::string>());
  std::map<char, int> letters;
  int exams = 0;
  for (const auto& r : jsonl_read(*dir_ / "sft.jsonl")) {
    ExamDialogue e;
    if (!parse_exam(r["conversations"], e)) continue;
    ++exams;
    ASSERT_TRUE(e.answer >= 'A' && e.answer <= 'E') << r.dump();
    ++letters[e.answer];
    const KbCondition* c = condition_named_in(*kb_, e.stem);
    ASSERT_NE(c, nullptr) << e.stem;
    const auto facts = condition_facts(*c);
    const std::string correct = e.options[static_cast<size_t>(e.answer - 'A')];
    EXPECT_TRUE(std::find(facts.begin(), facts.end(), correct) != facts.end()) << correct << " / " << c->id;
    EXPECT_EQ(e.reply_option, correct) << r.dump();
    EXPECT_EQ(held_out.count({c->id, correct}), 0u) << "exam dialogue reuses held-out item " << c->id << " / " << correct;
    for (size_t i = 0; i < e.options.size(); ++i) {
      if (i == static_cast<size_t>(e.answer - 'A')) continue;
      EXPECT_FALSE(overlaps(facts, e.options[i])) << "distractor '" << e.options[i] << "' overlaps " << c->id;
    }
  }
  EXPECT_EQ(exams, static_cast<int>(kb_->conditions.size()) * CorpusOptions{}.exam_per_condition);
  ASSERT_EQ(letters.size(), 5u);
  for (const auto& [letter, n] : letters) EXPECT_GT(n, exams / 10) << letter;
}
