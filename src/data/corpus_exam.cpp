// Exam-format SFT dialogues (part of sft.jsonl): a 单项选择题 with five lettered options -> the correct option's text,
// "答案：C。" and a short explanation, e.g. "腕关节X线。答案：C。解析：...". The reply starts with the answer's content
// so the fine-tuned model learns to answer with the fact the stem asks for. Built like the held-out MCQs (correct
// option = a fact of the asked condition, distractors = facts of other conditions that overlap none of its facts) but
// with training-only question stems, and never asking a (condition, correct fact) that a held-out MCQ asks.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <utility>

#include "data/corpus_facts.h"
#include "data/corpus_parts.h"

namespace stepwise {
namespace {

using nlohmann::json;
using Templates = std::vector<std::string>;

// Training-only stems; the held-out stems live in corpus_eval.cpp and must stay different.
const Templates& exam_stems(Aspect a) {
  static const AspectTable<Templates> table = {
      Templates{},  // summary
      Templates{"{n}可表现为：", "关于{n}的症状，正确的是：", "{n}的典型症状是："},  // symptoms
      Templates{"引起{n}的原因可能是：", "下列因素中，可导致{n}的是："},  // causes
      Templates{"易患{n}的人群是：", "{n}好发于："},  // risk_groups
      Templates{"诊断{n}常用的检查是：", "为明确{n}的诊断，可选择："},  // examinations
      Templates{"治疗{n}可采用：", "关于{n}的治疗，正确的是："},  // treatments
      Templates{"治疗{n}可选用的药物是：", "{n}患者可使用的药物是："},  // drugs
      Templates{"{n}可并发：", "{n}病情进展可引起："},  // complications
      Templates{"预防{n}的措施是：", "有助于预防{n}的做法是："},  // prevention
      Templates{"{n}患者出现哪种情况应立即就医？", "{n}的危险信号是："},  // red_flags
  };
  return table[aspect_index(a)];
}

// One candidate question: the stem, its correct option, the pool of safe distractors and the explanation.
struct ExamDraft {
  std::string stem, correct, explanation;
  std::vector<std::string> pool;  // >= 4
};

// "mcq-tcm_vertigo-3" -> "tcm_vertigo"
std::string condition_id_of(const std::string& record_id) {
  const size_t first = record_id.find('-'), last = record_id.rfind('-');
  SW_CHECK(first != std::string::npos && last > first);
  return record_id.substr(first + 1, last - first - 1);
}

// The (condition id, correct option text) pairs the held-out MCQs ask.
std::set<std::pair<std::string, std::string>> held_out_pairs(const std::vector<json>& eval_mcq) {
  std::set<std::pair<std::string, std::string>> out;
  for (const auto& q : eval_mcq)
    out.emplace(condition_id_of(q.at("id").get<std::string>()),
                q.at("option").at(q.at("answer").get<std::string>()).get<std::string>());
  return out;
}

std::vector<ExamDraft> exam_drafts(const KnowledgeBase& kb, const FactOverlap& overlap, const KbCondition& c,
                                   const std::set<std::pair<std::string, std::string>>& held_out, CorpusRng& rng) {
  std::vector<ExamDraft> out;
  for (Aspect a : available_aspects(c)) {
    if (exam_stems(a).empty()) continue;
    const auto pool = overlap.foreign_items(c, a);
    if (pool.size() < 4) continue;
    const auto& items = aspect_items(c, a);
    for (const auto& fact : items) {
      if (held_out.count({c.id, fact})) continue;
      ExamDraft d;
      d.stem = fill_template(rng.pick(exam_stems(a)), {{"n", c.name}});
      d.correct = fact;
      d.pool = pool;
      d.explanation = state_items(c, a, items, rng);
      out.push_back(std::move(d));
    }
  }
  for (const auto& s : c.syndromes)
    for (const bool ask_formula : {true, false}) {
      const std::string correct = ask_formula ? s.formula : s.therapy;
      if (held_out.count({c.id, correct})) continue;
      std::vector<std::string> pool;
      for (const auto& other : kb.conditions)
        for (const auto& os : other.syndromes) {
          const std::string item = ask_formula ? os.formula : os.therapy;
          if (!overlap.overlaps(c, item) && std::find(pool.begin(), pool.end(), item) == pool.end())
            pool.push_back(item);
        }
      if (pool.size() < 4) continue;
      ExamDraft d;
      d.stem = ask_formula ? c.name + s.name + "，宜选用的方剂是：" : c.name + s.name + "，应采用的治法是：";
      d.correct = correct;
      d.pool = std::move(pool);
      d.explanation = c.name + s.name + "治以" + s.therapy + "，代表方剂为" + s.formula + "。";
      out.push_back(std::move(d));
    }
  return out;
}

// The user turn: an exam instruction (mostly the CMB wording), the stem, the options, "答案：".
std::string exam_prompt(const KbCondition& c, const std::string& stem, const std::vector<std::string>& options,
                        CorpusRng& rng) {
  std::string p;
  switch (rng.below(3)) {
    case 0:
    case 1:
      p = cat("以下是中国医师考核", c.department, "考试中的一道单项选择题（科目：", clinic_of(c),
              "），请直接给出唯一正确选项的字母。\n");
      break;
    default:
      p = "请回答下面这道单选题，只需给出正确选项的字母。\n";
      break;
  }
  p += stem + "\n";
  for (size_t i = 0; i < options.size(); ++i) p += cat(static_cast<char>('A' + i), ". ", options[i], "\n");
  return p + "答案：";
}

json exam_conversation(const KbCondition& c, ExamDraft d, CorpusRng& rng) {
  rng.shuffle(d.pool);
  std::vector<std::string> options(d.pool.begin(), d.pool.begin() + 4);
  const size_t letter = rng.below(5);
  options.insert(options.begin() + static_cast<std::ptrdiff_t>(letter), d.correct);
  const char answer = static_cast<char>('A' + letter);
  const std::string reply = cat(d.correct, "。答案：", answer, "。解析：", d.explanation);
  return json::array({json{{"role", "user"}, {"content", exam_prompt(c, d.stem, options, rng)}},
                      json{{"role", "assistant"}, {"content", reply}}});
}

}  // namespace

std::vector<json> generate_sft_exam(const KnowledgeBase& kb, const CorpusOptions& options, const FactOverlap& overlap,
                                    const std::vector<json>& eval_mcq) {
  const auto held_out = held_out_pairs(eval_mcq);
  std::vector<json> out;
  for (const auto& c : kb.conditions) {
    CorpusRng rng = corpus_rng(options, "sft-exam", c.id);
    std::vector<ExamDraft> drafts = exam_drafts(kb, overlap, c, held_out, rng);
    if (drafts.empty()) continue;
    rng.shuffle(drafts);
    for (int k = 0; k < options.exam_per_condition; ++k)
      out.push_back(json{{"conversations", exam_conversation(c, drafts[static_cast<size_t>(k) % drafts.size()], rng)},
                         {"department", c.department}});
  }
  return out;
}

}  // namespace stepwise
