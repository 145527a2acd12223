// Supervised fine-tuning conversations (sft.jsonl): single-turn questions on one aspect of a condition, 39ask-style
// patient questions with a doctor's answer, multi-turn consultations, 中医 syndrome / formula / herb questions, and
// the exam-format dialogues of corpus_exam.cpp.
#include <nlohmann/json.hpp>

#include <utility>

#include "data/corpus_facts.h"
#include "data/corpus_parts.h"

namespace stepwise {
namespace {

using nlohmann::json;

json turn(const std::string& role, const std::string& content) { return json{{"role", role}, {"content", content}}; }

std::string system_prompt(const KnowledgeBase& kb, CorpusRng& rng) {
  static const std::vector<std::string> prompts = {
      "你是一名耐心细致的医生助手，请根据医学知识回答用户的健康问题。", "你是医疗健康科普助手，回答要准确、简明、易懂。",
      "你是一位经验丰富的全科医生，请认真回答患者的咨询。", "你是医学知识问答助手。"};
  std::string p = rng.pick(prompts);
  if (rng.percent(30)) p += kb.disclaimer;
  return p;
}

// Follow-up questions of a consultation that refer back to the condition just named.
std::string follow_up(Aspect a, CorpusRng& rng) {
  switch (a) {
    case Aspect::examinations: return rng.pick(std::vector<std::string>{"那需要做哪些检查？", "去医院要查什么？"});
    case Aspect::treatments: return rng.pick(std::vector<std::string>{"那应该怎么治疗呢？", "这个病好治吗？怎么治？"});
    case Aspect::drugs: return rng.pick(std::vector<std::string>{"一般用什么药？", "需要吃药吗？吃哪些？"});
    case Aspect::complications: return rng.pick(std::vector<std::string>{"不管它会有什么后果吗？", "会有并发症吗？"});
    case Aspect::prevention: return rng.pick(std::vector<std::string>{"平时生活上要注意什么？", "以后怎么预防？"});
    case Aspect::red_flags: return rng.pick(std::vector<std::string>{"什么情况下要马上去医院？", "出现什么情况要急诊？"});
    case Aspect::causes: return rng.pick(std::vector<std::string>{"为什么会得这个病？", "是什么原因引起的？"});
    default: return rng.pick(std::vector<std::string>{"能再详细说说这个病吗？", "这个病具体是什么？"});
  }
}

std::string maybe_disclaimer(const KnowledgeBase& kb, CorpusRng& rng) {
  return rng.percent(10) ? disclaimer_note(kb, rng) : "";
}

json conversation(const KnowledgeBase& kb, const KbCondition& c, int kind, CorpusRng& rng) {
  json turns = json::array();
  if (rng.percent(40)) turns.push_back(turn("system", system_prompt(kb, rng)));
  if (kind < 55) {  // one aspect, one turn
    const Aspect a = rng.pick(available_aspects(c));
    turns.push_back(turn("user", ask_about(c, a, rng)));
    turns.push_back(turn("assistant", answer_about(c, a, rng) + maybe_disclaimer(kb, rng)));
  } else if (kind < 78 || (c.syndromes.empty() && kind < 88)) {  // 39ask-style patient question
    turns.push_back(turn("user", patient_question(c, make_patient(c, rng), rng)));
    turns.push_back(turn("assistant", doctor_answer(c, rng) + maybe_disclaimer(kb, rng)));
  } else if (kind < 88) {  // 中医 syndrome question
    const KbSyndrome& s = rng.pick(c.syndromes);
    const std::string q = rng.pick(std::vector<std::string>{
        "中医怎么治疗" + c.name + s.name + "？", c.name + "属于" + s.name + "的话，用什么方子？",
        "我" + join_items(rng.subset(s.symptoms, 2, 3), "、") + "，" + s.tongue_pulse + "，中医说是" + c.name +
            "，是哪个证型？怎么调理？"});
    turns.push_back(turn("user", q));
    turns.push_back(turn("assistant", syndrome_passage(c, s, rng) + "具体用药请在中医师辨证指导下进行。"));
  } else {  // multi-turn consultation
    turns.push_back(turn("user", patient_question(c, make_patient(c, rng), rng)));
    turns.push_back(turn("assistant", doctor_answer(c, rng)));
    auto aspects = available_aspects(c);
    rng.shuffle(aspects);
    const int rounds = rng.range(1, 2);
    for (int r = 0; r < rounds && r < static_cast<int>(aspects.size()); ++r) {
      turns.push_back(turn("user", follow_up(aspects[r], rng)));
      turns.push_back(turn("assistant", answer_about(c, aspects[r], rng)));
    }
  }
  return turns;
}

json herb_conversation(const KbHerb& h, CorpusRng& rng) {
  const std::string q = rng.pick(std::vector<std::string>{h.name + "有什么功效？", h.name + "归什么经？性味如何？",
                                                          "中药" + h.name + "的作用是什么？"});
  return json::array({turn("user", q), turn("assistant", herb_passage(h, rng))});
}

json formula_conversation(const KnowledgeBase& kb, const KbFormula& f, CorpusRng& rng) {
  const std::string q = rng.pick(std::vector<std::string>{f.name + "由哪些药组成？", f.name + "出自哪本书？有什么功效？",
                                                          "请介绍一下" + f.name + "。"});
  std::string a = formula_passage(kb, f, rng);
  for (const auto& c : kb.conditions)
    for (const auto& s : c.syndromes)
      if (s.formula == f.name) a += "临床常用于" + c.name + s.name + "。";
  return json::array({turn("user", q), turn("assistant", a)});
}

}  // namespace

std::vector<json> generate_sft(const KnowledgeBase& kb, const CorpusOptions& options, std::vector<json> exam) {
  std::vector<json> out = std::move(exam);
  for (const auto& c : kb.conditions) {
    CorpusRng rng = corpus_rng(options, "sft", c.id);
    for (int i = 0; i < options.sft_per_condition; ++i) {
      const int kind = static_cast<int>(rng.below(100));
      out.push_back(json{{"conversations", conversation(kb, c, kind, rng)}, {"department", c.department}});
    }
  }
  for (const auto& h : kb.herbs) {
    CorpusRng rng = corpus_rng(options, "sft-herb", h.name);
    out.push_back(json{{"conversations", herb_conversation(h, rng)}, {"department", "中医科"}});
  }
  for (const auto& f : kb.formulas) {
    CorpusRng rng = corpus_rng(options, "sft-formula", f.name);
    for (int k = 0; k < 2; ++k)
      out.push_back(json{{"conversations", formula_conversation(kb, f, rng)}, {"department", "中医科"}});
  }
  shuffle_and_number(out, options, "sft");
  return out;
}

}  // namespace stepwise
