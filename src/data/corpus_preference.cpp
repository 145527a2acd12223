// Preference pairs (preference.jsonl): a prompt, a chosen answer (the KB's facts, with sensible advice) and a
// rejected answer that is wrong (facts of another condition), unsafe, evasive, incomplete, or the same correct answer
// closed with risky advice instead of a responsible closing (`risky_advice`: the closings occur nowhere else in the
// corpus, so only preference training teaches which one is better), labelled in `reason`. The five reasons take
// turns, so each holds about a fifth of the pairs.
#include <nlohmann/json.hpp>

#include <iterator>
#include <map>

#include "data/corpus_facts.h"
#include "data/corpus_parts.h"

namespace stepwise {
namespace {

using nlohmann::json;

const char* const kReasons[] = {"wrong_fact", "unsafe", "evasive", "incomplete", "risky_advice"};

json turn(const std::string& role, const std::string& content) { return json{{"role", role}, {"content", content}}; }

std::string unsafe_answer(const KbCondition& c, Aspect a, CorpusRng& rng) {
  std::vector<std::string> t = {
      "{n}没什么大不了的，不用去医院，也不用做什么检查，忍一忍自己就好了。",
      "{n}可以自己去药店买点抗生素和激素吃，剂量大一点好得更快，没必要看医生。",
      "得了{n}，就算出现{flag}也不用紧张，在家观察几天再说，别急着去医院。",
      "治疗{n}最好用偏方，正规药物副作用大，医生开的药能不吃就不吃。",
      "{n}的症状一好转就可以自行停药，复查也没什么必要。"};
  if (!c.drugs.empty()) {
    t.push_back("{n}可以把{drug}的剂量加倍服用，见效更快，不用听医生的。");
    t.push_back("{n}不用去医院，网上买点{drug}自己吃就行，吃多少看感觉。");
  }
  const std::string drug = c.drugs.empty() ? "" : rng.pick(c.drugs);
  (void)a;
  return fill_template(rng.pick(t), {{"n", c.name}, {"flag", rng.pick(c.red_flags)}, {"drug", drug}});
}

std::string evasive_answer(const KbCondition& c, CorpusRng& rng) {
  static const std::vector<std::string> t = {"这个问题不好说，每个人情况都不一样，你自己上网查查吧。",
                                             "关于{n}，我没法回答，你去问别人吧。",
                                             "这个很复杂，一两句话说不清楚，建议你别想太多。",
                                             "不好意思，{n}的问题我不方便回答。", "这要看情况，说不准。"};
  return fill_template(rng.pick(t), {{"n", c.name}});
}

// The closing sentence of a `risky_advice` pair's chosen (responsible) or rejected (risky) answer.
std::string advice_closing(const KbCondition& c, bool responsible, CorpusRng& rng) {
  static const std::vector<std::string> good = {"以上仅供参考，具体请以接诊医生的面诊意见为准。",
                                                "若用药后出现明显不良反应，应尽快联系主治医生。",
                                                "治疗期间请遵照医嘱完成疗程，切勿自行调整。",
                                                "若症状持续或加重，请尽早前往{clinic}复诊。"};
  static const std::vector<std::string> risky = {"网上的经验帖比医生更靠谱，照着做就行。",
                                                 "症状轻的时候完全可以拖一拖，等严重了再去{clinic}也来得及。",
                                                 "药量可以凭自己的感觉增减，不必告诉医生。",
                                                 "别人用过有效的方子，你直接拿来用就可以。"};
  return fill_template(rng.pick(responsible ? good : risky), {{"clinic", clinic_of(c)}});
}

// Facts of `a` that belong to other conditions and not to `c`; memoised per condition and aspect.
class ForeignFacts {
 public:
  ForeignFacts(const FactOverlap& overlap, const KbCondition& c) : overlap_(overlap), c_(c) {}
  const std::vector<std::string>& of(Aspect a) {
    auto it = cache_.find(a);
    if (it == cache_.end()) it = cache_.emplace(a, overlap_.foreign_items(c_, a)).first;
    return it->second;
  }

 private:
  const FactOverlap& overlap_;
  const KbCondition& c_;
  std::map<Aspect, std::vector<std::string>> cache_;
};

json pair_record(json prompt, const std::string& chosen, const std::string& rejected, const std::string& reason) {
  return json{{"conversations", std::move(prompt)}, {"chosen", chosen}, {"rejected", rejected}, {"reason", reason}};
}

json make_pair(const KnowledgeBase& kb, const KbCondition& c, const std::string& reason, ForeignFacts& foreign,
               CorpusRng& rng) {
  json prompt = json::array();
  if (rng.percent(30)) prompt.push_back(turn("system", "你是一名负责任的医生助手，回答须准确、安全。"));
  // A 39ask-style prompt sometimes (any reason but wrong_fact); otherwise a question on one aspect.
  if (reason != "wrong_fact" && reason != "risky_advice" && rng.percent(30)) {
    prompt.push_back(turn("user", patient_question(c, make_patient(c, rng), rng)));
    const std::string chosen = doctor_answer(c, rng);
    std::string rejected;
    if (reason == "unsafe") rejected = unsafe_answer(c, Aspect::treatments, rng);
    else if (reason == "evasive") rejected = evasive_answer(c, rng);
    else rejected = "可能是" + c.name + "。";
    return pair_record(std::move(prompt), chosen, rejected, reason);
  }
  std::vector<Aspect> aspects;
  for (Aspect a : available_aspects(c)) {
    if (reason == "wrong_fact" && foreign.of(a).empty()) continue;
    if (reason == "incomplete" && aspect_items(c, a).size() < 2) continue;
    aspects.push_back(a);
  }
  if (aspects.empty()) aspects = {Aspect::symptoms};  // symptoms always hold >= 3 items and other conditions exist
  const Aspect a = rng.pick(aspects);
  prompt.push_back(turn("user", ask_about(c, a, rng)));
  std::string chosen = answer_about(c, a, rng);
  std::string rejected;
  if (reason == "risky_advice") {
    rejected = chosen + advice_closing(c, false, rng);
    chosen += advice_closing(c, true, rng);
  } else if (reason == "wrong_fact") {
    const auto& pool = foreign.of(a);
    if (pool.empty()) fail("knowledge base: cannot build a wrong answer for condition '", c.id,
                           "': no other condition has a different fact of '", aspect_slug(a), "'");
    rejected = state_items(c, a, a == Aspect::summary ? std::vector<std::string>{rng.pick(pool)}
                                                      : rng.subset(pool, 2, 4), rng);
  } else if (reason == "unsafe") {
    rejected = unsafe_answer(c, a, rng);
  } else if (reason == "evasive") {
    rejected = evasive_answer(c, rng);
  } else {
    const auto& items = aspect_items(c, a);
    rejected = state_items(c, a, {items.begin(), items.begin() + 1}, rng);
  }
  return pair_record(std::move(prompt), chosen, rejected, reason);
}

}  // namespace

std::vector<json> generate_preference(const KnowledgeBase& kb, const CorpusOptions& options,
                                      const FactOverlap& overlap) {
  if (kb.conditions.size() < 2) fail("knowledge base: preference pairs need at least two conditions");
  std::vector<json> out;
  for (const auto& c : kb.conditions) {
    CorpusRng rng = corpus_rng(options, "preference", c.id);
    ForeignFacts foreign(overlap, c);
    for (int i = 0; i < options.preference_per_condition; ++i) {
      const std::string reason = kReasons[out.size() % std::size(kReasons)];
      out.push_back(make_pair(kb, c, reason, foreign, rng));
      out.back()["department"] = c.department;
    }
  }
  shuffle_and_number(out, options, "preference");
  return out;
}

}  // namespace stepwise
