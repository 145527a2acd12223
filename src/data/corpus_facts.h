// Phrasing of knowledge-base facts shared by the training splits (pretrain, SFT, preference): aspects of a
// condition, training question templates, answers, patients, 中医 passages. Held-out eval phrasings live only in
// corpus_eval.cpp and must never be added here.
#pragma once
#include <array>
#include <iterator>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/corpus_text.h"
#include "data/kb.h"

namespace stepwise {

enum class Aspect { summary, symptoms, causes, risk_groups, examinations, treatments, drugs, complications, prevention,
                    red_flags };
inline constexpr Aspect kAllAspects[] = {Aspect::summary,      Aspect::symptoms,   Aspect::causes,
                                         Aspect::risk_groups,  Aspect::examinations, Aspect::treatments,
                                         Aspect::drugs,        Aspect::complications, Aspect::prevention,
                                         Aspect::red_flags};
// One value per aspect, in the order of the enum (and of kAllAspects).
template <class V>
using AspectTable = std::array<V, std::size(kAllAspects)>;
inline size_t aspect_index(Aspect a) { return static_cast<size_t>(a); }

const char* aspect_slug(Aspect aspect);                                       // "symptoms", ...
const std::vector<std::string>& aspect_items(const KbCondition& c, Aspect a);  // summary: empty
bool aspect_available(const KbCondition& c, Aspect a);                        // has something to say
std::vector<Aspect> available_aspects(const KbCondition& c);

std::string clinic_of(const KbCondition& c);           // sub_department when given, else department
std::string definition_of(const KbCondition& c);       // "高血压是……。"

// A training-split question about one aspect ("高血压有哪些症状？").
std::string ask_about(const KbCondition& c, Aspect a, CorpusRng& rng);
// A sentence stating `items` as the condition's facts of this aspect; for summary, items[0] is the definition body.
std::string state_items(const KbCondition& c, Aspect a, const std::vector<std::string>& items, CorpusRng& rng);
// The full correct answer: all facts of the aspect plus, sometimes, where to go and when to hurry.
std::string answer_about(const KbCondition& c, Aspect a, CorpusRng& rng);

struct Patient {
  std::string sex;     // 男 | 女
  int age = 0;
  bool child = false;
  std::string who;     // "我今年45岁，男" / "我家孩子3岁，女孩"
};
Patient make_patient(const KbCondition& c, CorpusRng& rng);
std::string duration_phrase(CorpusRng& rng);           // "3天", "半个月", ...

// 39ask-style: a patient describing some symptoms of `c`, and a doctor's answer naming c, where to go, exams, care.
std::string patient_question(const KbCondition& c, const Patient& p, CorpusRng& rng);
std::string doctor_answer(const KbCondition& c, CorpusRng& rng);

// 中医 passages: one syndrome of a condition, a formula, a herb.
std::string syndrome_passage(const KbCondition& c, const KbSyndrome& s, CorpusRng& rng);
std::string formula_passage(const KnowledgeBase& kb, const KbFormula& f, CorpusRng& rng);
std::string herb_passage(const KbHerb& h, CorpusRng& rng);

// Which conditions a text overlaps: it equals, contains or is contained in one of their facts (condition_facts).
// An item that overlaps a condition may never be offered as a wrong answer about it. Built once per KB: facts and
// their substrings (at character boundaries) are hashed, so a query costs a few lookups, not a scan of the KB.
class FactOverlap {
 public:
  explicit FactOverlap(const KnowledgeBase& kb);
  bool overlaps(const KbCondition& c, const std::string& item) const;
  // Items of aspect `a` (summary: the summaries) of conditions other than `c` that do not overlap `c`: distinct,
  // in KB order.
  std::vector<std::string> foreign_items(const KbCondition& c, Aspect a) const;

 private:
  const std::vector<int>& owners(const std::string& item) const;  // sorted condition indices
  size_t index_of(const KbCondition& c) const;

  const KnowledgeBase& kb_;
  std::unordered_map<std::string, std::vector<int>> fact_owners_;       // fact -> conditions stating it
  std::unordered_map<std::string, std::vector<int>> substring_owners_;  // substring of a fact -> conditions
  mutable std::unordered_map<std::string, std::vector<int>> cache_;     // item -> overlapping conditions
};

// The disclaimer from meta.yaml, phrased as a note.
std::string disclaimer_note(const KnowledgeBase& kb, CorpusRng& rng);

}  // namespace stepwise
