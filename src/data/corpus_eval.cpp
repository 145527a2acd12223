// Held-out evaluation sets: eval_mcq.jsonl (CMB-Exam schema, 单项选择题) and eval_qa.jsonl (open questions).
// Their question phrasings exist only in this file (no training split uses them); the correct option is a fact of the
// asked condition, the four distractors are facts of OTHER conditions that overlap no fact of the asked one, and the
// correct letters are balanced over A-E.
#include <nlohmann/json.hpp>

#include <algorithm>

#include "data/corpus_facts.h"
#include "data/corpus_parts.h"

namespace stepwise {
namespace {

using nlohmann::json;
using Templates = std::vector<const char*>;

const Templates& mcq_templates(Aspect a) {
  static const AspectTable<Templates> table = {
      Templates{},  // summary
      Templates{"下列哪一项是{n}的常见临床表现？", "{n}患者最可能出现下列哪种表现？",
                "以下选项中，符合{n}临床表现的是："},  // symptoms
      Templates{"下列哪一项是{n}的常见病因？", "{n}的发生与下列哪项因素关系最密切？"},  // causes
      Templates{"{n}的高危人群是下列哪一类？", "下列人群中，{n}较为多见的是："},  // risk_groups
      Templates{"对{n}的诊断最有帮助的检查是下列哪一项？", "疑诊{n}时，应考虑安排下列哪项检查？"},  // examinations
      Templates{"下列哪一项属于{n}的治疗措施？", "{n}的处理原则包括下列哪一项？"},  // treatments
      Templates{"下列药物中，可用于治疗{n}的是：", "{n}的常用治疗药物是下列哪一种？"},  // drugs
      Templates{"下列哪一项是{n}的常见并发症？", "{n}若长期控制不佳，最可能导致下列哪种情况？"},  // complications
      Templates{"下列哪一项是预防{n}的有效措施？", "预防{n}，应采取下列哪项措施？"},  // prevention
      Templates{"{n}患者出现下列哪种情况时需要立即就医？"},  // red_flags
  };
  return table[aspect_index(a)];
}

const char* qa_template(Aspect a) {
  switch (a) {
    case Aspect::summary: return "请给出{n}的定义。";
    case Aspect::symptoms: return "请简要说明{n}的主要临床表现。";
    case Aspect::causes: return "请概述{n}的主要病因。";
    case Aspect::risk_groups: return "请指出{n}的好发人群。";
    case Aspect::examinations: return "请列出诊断{n}常用的辅助检查。";
    case Aspect::treatments: return "请简述{n}的治疗原则。";
    case Aspect::drugs: return "请列举治疗{n}的常用药物。";
    case Aspect::complications: return "请说明{n}可能出现的并发症。";
    case Aspect::prevention: return "请简述{n}的预防要点。";
    case Aspect::red_flags: return "请说明{n}患者需要紧急就医的情形。";
  }
  SW_CHECK(false);
}

std::string qa_answer(const KbCondition& c, Aspect a) {
  const auto& items = aspect_items(c, a);
  switch (a) {
    case Aspect::summary: return definition_of(c);
    case Aspect::symptoms: return c.name + "的主要临床表现有" + join_items(items) + "。";
    case Aspect::causes: return c.name + "的主要病因有" + join_items(items) + "。";
    case Aspect::risk_groups: return c.name + "的好发人群有" + join_items(items) + "。";
    case Aspect::examinations: return "诊断" + c.name + "常用的检查有" + join_items(items) + "。";
    case Aspect::treatments: return c.name + "的治疗包括" + join_items(items) + "。";
    case Aspect::drugs: return "治疗" + c.name + "的常用药物有" + join_items(items) + "。";
    case Aspect::complications: return c.name + "可能出现的并发症有" + join_items(items) + "。";
    case Aspect::prevention: return "预防" + c.name + "应做到" + join_items(items) + "。";
    case Aspect::red_flags: return c.name + "患者出现" + join_items(items, "或") + "时应立即就医。";
  }
  SW_CHECK(false);
}

struct McqDraft {
  std::string id, question, correct, department, subject;
  std::vector<std::string> distractors;  // 4
};

// The 中医 questions of a condition: formula or therapy of one syndrome, distractors from syndromes of others.
bool tcm_draft(const KnowledgeBase& kb, const FactOverlap& overlap, const KbCondition& c, int k, CorpusRng& rng,
               McqDraft& d) {
  if (c.syndromes.empty()) return false;
  const KbSyndrome& s = c.syndromes[static_cast<size_t>(k) % c.syndromes.size()];
  const bool ask_formula = k % 2 == 0;
  std::vector<std::string> pool;
  for (const auto& other : kb.conditions)
    for (const auto& os : other.syndromes) {
      const std::string item = ask_formula ? os.formula : os.therapy;
      if (!overlap.overlaps(c, item) && std::find(pool.begin(), pool.end(), item) == pool.end()) pool.push_back(item);
    }
  if (pool.size() < 4) return false;
  rng.shuffle(pool);
  d.question = ask_formula ? c.name + "辨证属" + s.name + "，治疗应首选下列哪个方剂？" : c.name + s.name + "的治法是：";
  d.correct = ask_formula ? s.formula : s.therapy;
  d.distractors.assign(pool.begin(), pool.begin() + 4);
  return true;
}

std::vector<McqDraft> mcq_drafts(const KnowledgeBase& kb, const FactOverlap& overlap, const KbCondition& c,
                                 const CorpusOptions& options) {
  CorpusRng rng = corpus_rng(options, "eval-mcq", c.id);
  std::vector<std::pair<Aspect, std::vector<std::string>>> usable;  // aspects with >= 4 safe distractors
  for (Aspect a : available_aspects(c)) {
    if (mcq_templates(a).empty()) continue;
    auto pool = overlap.foreign_items(c, a);
    if (pool.size() >= 4) usable.emplace_back(a, std::move(pool));
  }
  rng.shuffle(usable);
  std::vector<McqDraft> out;
  for (int k = 0; k < options.mcq_per_condition; ++k) {
    McqDraft d;
    d.id = cat("mcq-", c.id, "-", k + 1);
    d.department = c.department;
    d.subject = clinic_of(c);
    // 中医科 conditions: every third question on syndromes, when the KB has enough formulas / therapies.
    if (!(k % 3 == 2 && tcm_draft(kb, overlap, c, k / 3, rng, d))) {
      if (usable.empty()) fail("knowledge base: condition '", c.id, "' has no aspect with 4 distractors from other conditions");
      auto& [a, pool] = usable[static_cast<size_t>(k) % usable.size()];
      const int round = k / static_cast<int>(usable.size());
      const auto& templates = mcq_templates(a);
      d.question = fill_template(templates[static_cast<size_t>(round) % templates.size()], {{"n", c.name}});
      const auto& items = aspect_items(c, a);
      d.correct = items[static_cast<size_t>(round + static_cast<int>(rng.below(items.size()))) % items.size()];
      rng.shuffle(pool);
      d.distractors.assign(pool.begin(), pool.begin() + 4);
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

std::vector<json> generate_eval_mcq(const KnowledgeBase& kb, const CorpusOptions& options,
                                    const FactOverlap& overlap) {
  std::vector<McqDraft> drafts;
  for (const auto& c : kb.conditions) {
    auto more = mcq_drafts(kb, overlap, c, options);
    drafts.insert(drafts.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  // Balanced correct letters: A-E in turn, then shuffled over the questions.
  std::vector<int> letters(drafts.size());
  for (size_t i = 0; i < letters.size(); ++i) letters[i] = static_cast<int>(i % 5);
  CorpusRng rng = corpus_rng(options, "eval-mcq", "letters");
  rng.shuffle(letters);
  std::vector<json> out;
  for (size_t i = 0; i < drafts.size(); ++i) {
    McqDraft& d = drafts[i];
    rng.shuffle(d.distractors);
    json option = json::object();
    size_t next = 0;
    for (int l = 0; l < 5; ++l) {
      const std::string letter(1, static_cast<char>('A' + l));
      option[letter] = l == letters[i] ? d.correct : d.distractors[next++];
    }
    out.push_back(json{{"id", d.id},
                       {"exam_type", "医师考核"},
                       {"exam_class", d.department},
                       {"exam_subject", d.subject},
                       {"question", d.question},
                       {"option", option},
                       {"answer", std::string(1, static_cast<char>('A' + letters[i]))},
                       {"question_type", "单项选择题"}});
  }
  shuffle_records(out, options, "eval_mcq");  // so a --limit N prefix spans every department
  return out;
}

std::vector<json> generate_eval_qa(const KnowledgeBase& kb, const CorpusOptions& options) {
  std::vector<json> out;
  for (const auto& c : kb.conditions) {
    CorpusRng rng = corpus_rng(options, "eval-qa", c.id);
    auto aspects = available_aspects(c);
    rng.shuffle(aspects);
    for (int k = 0; k < options.qa_per_condition; ++k) {
      std::string question, answer;
      if (!c.syndromes.empty() && k % 3 == 2) {
        const KbSyndrome& s = c.syndromes[static_cast<size_t>(k / 3) % c.syndromes.size()];
        question = "请写出" + c.name + s.name + "的辨证要点、治法与代表方剂。";
        answer = c.name + s.name + "：症见" + join_items(s.symptoms, "、") + "，" + s.tongue_pulse + "；治法为" +
                 s.therapy + "；代表方剂为" + s.formula + "。";
      } else {
        const Aspect a = aspects[static_cast<size_t>(k) % aspects.size()];
        question = fill_template(qa_template(a), {{"n", c.name}});
        answer = qa_answer(c, a);
      }
      out.push_back(json{{"id", cat("qa-", c.id, "-", k + 1)}, {"question", question}, {"answer", answer}});
    }
  }
  shuffle_records(out, options, "eval_qa");  // so a --limit N prefix spans every department
  return out;
}

}  // namespace stepwise
