// Pretraining documents (pretrain.jsonl): encyclopedia entries, patient-education articles, case reports, Q&A
// digests, study notes, health-management guides, 中医 classic-style passages, materia medica and formulary pages.
// Each document is grown with further true statements until it reaches options.min_document_chars Han characters.
#include <nlohmann/json.hpp>

#include "data/corpus_facts.h"
#include "data/corpus_parts.h"

namespace stepwise {
namespace {

using nlohmann::json;

enum class DocKind { encyclopedia, education, case_report, qa_digest, study_notes, health_management, tcm_classic };

const char* doc_source(DocKind k) {
  switch (k) {
    case DocKind::encyclopedia: return "encyclopedia";
    case DocKind::education: return "patient_education";
    case DocKind::case_report: return "case_report";
    case DocKind::qa_digest: return "qa_digest";
    case DocKind::study_notes: return "study_notes";
    case DocKind::health_management: return "health_management";
    case DocKind::tcm_classic: return "tcm_classic";
  }
  SW_CHECK(false);
}

// Appends a new line and `paragraph` (two appends: g++ 12 warns falsely on "literal" + std::string&&).
void add_paragraph(std::string& doc, const std::string& paragraph) {
  doc += '\n';
  doc += paragraph;
}

std::string section(CorpusRng& rng, const std::string& title) {
  return rng.percent(50) ? "\n【" + title + "】" : "\n" + title + "：";
}

std::string encyclopedia(const KbCondition& c, CorpusRng& rng) {
  std::string t = c.name;
  if (!c.aliases.empty()) t += "（又称" + join_items(c.aliases, "、") + "）";
  add_paragraph(t, definition_of(c) + "本病属于" + c.department + "常见病" + (c.sub_department.empty() ? "" : "，多在" + c.sub_department + "诊治") + "。");
  t += section(rng, "病因") + state_items(c, Aspect::causes, c.causes, rng) + state_items(c, Aspect::risk_groups, c.risk_groups, rng);
  t += section(rng, "临床表现") + state_items(c, Aspect::symptoms, c.symptoms, rng);
  t += section(rng, "检查") + state_items(c, Aspect::examinations, c.examinations, rng);
  t += section(rng, "治疗") + state_items(c, Aspect::treatments, c.treatments, rng);
  if (!c.drugs.empty()) t += state_items(c, Aspect::drugs, c.drugs, rng);
  for (const auto& s : c.syndromes) t += syndrome_passage(c, s, rng);
  if (!c.complications.empty()) t += section(rng, "并发症") + state_items(c, Aspect::complications, c.complications, rng);
  t += section(rng, "预防") + state_items(c, Aspect::prevention, c.prevention, rng);
  t += section(rng, "就医提示") + state_items(c, Aspect::red_flags, c.red_flags, rng);
  return t;
}

std::string education(const KbCondition& c, CorpusRng& rng) {
  static const std::vector<std::string> titles = {"{n}：你需要知道的几件事", "关于{n}，医生想告诉你",
                                                  "得了{n}别慌，读懂这篇就够了", "科普｜认识{n}",
                                                  "{n}离我们有多远？"};
  std::string t = fill_template(rng.pick(titles), {{"n", c.name}}) + "\n";
  t += rng.pick(std::vector<std::string>{"很多人都听说过" + c.name + "，但未必真正了解它。",
                                         "在" + clinic_of(c) + "门诊，" + c.name + "是很常见的问题。",
                                         "今天我们来聊一聊" + c.name + "。"});
  t += definition_of(c);
  t += "\n它有哪些表现？" + state_items(c, Aspect::symptoms, rng.subset(c.symptoms, 2, 8), rng);
  t += "\n为什么会得？" + state_items(c, Aspect::causes, c.causes, rng) + "尤其是" + join_items(c.risk_groups) + "，更要当心。";
  t += "\n怎么确诊和治疗？" + state_items(c, Aspect::examinations, c.examinations, rng) +
       state_items(c, Aspect::treatments, c.treatments, rng);
  t += "\n怎样预防？" + state_items(c, Aspect::prevention, c.prevention, rng);
  t += "\n特别提醒：" + state_items(c, Aspect::red_flags, c.red_flags, rng);
  return t;
}

std::string case_report(const KbCondition& c, CorpusRng& rng) {
  const Patient p = make_patient(c, rng);
  const auto sym = rng.subset(c.symptoms, 2, 4);
  const std::string dur = duration_phrase(rng);
  std::string t = rng.pick(std::vector<std::string>{"病例报告：", "典型病例分析：", "临床病例："}) + c.name + "一例\n";
  t += cat(p.child ? "患儿，" : "患者，", p.sex, "，", p.age, "岁，因“", join_items(sym, "、"), dur, "”到", clinic_of(c),
           "就诊。");
  t += "现病史：" + dur + "前出现" + join_items(sym, "、") + "，逐渐加重。";
  t += "辅助检查：行" + join_items(c.examinations, "、") + "，结果支持" + c.name + "的诊断。";
  t += "诊断：" + c.name + "。";
  if (!c.syndromes.empty()) {
    const KbSyndrome& s = rng.pick(c.syndromes);
    t += "中医辨证为" + s.name + "，症见" + join_items(s.symptoms, "、") + "，" + s.tongue_pulse + "。治以" + s.therapy +
         "，方选" + s.formula + "加减。";
  }
  t += "治疗：予" + join_items(c.treatments) + "。";
  if (!c.drugs.empty()) t += "药物选用" + join_items(rng.subset(c.drugs, 1, 3)) + "。";
  t += "经规范治疗后症状明显缓解，嘱其" + join_items(c.prevention) + "，定期复诊。";
  t += "\n讨论：" + definition_of(c) + state_items(c, Aspect::causes, c.causes, rng) +
       "本例提示，出现" + join_items(c.symptoms, "、") + "等表现时应想到" + c.name + "，及时完善" +
       join_items(c.examinations, "、") + "。";
  if (!c.complications.empty()) t += "若延误治疗，可出现" + join_items(c.complications) + "等并发症。";
  return t;
}

std::string qa_digest(const KbCondition& c, CorpusRng& rng) {
  std::string t = rng.pick(std::vector<std::string>{"关于" + c.name + "的常见问题", c.name + "问答",
                                                    c.name + "患者最关心的几个问题"});
  auto aspects = available_aspects(c);
  rng.shuffle(aspects);
  aspects.resize(std::min<size_t>(aspects.size(), 5));
  for (Aspect a : aspects) t += "\n问：" + ask_about(c, a, rng) + "\n答：" + answer_about(c, a, rng);
  return t;
}

std::string study_notes(const KbCondition& c, CorpusRng& rng) {
  std::string t = "【" + c.department + "学习笔记】" + c.name + "\n";
  int k = 1;
  auto line = [&](const std::string& label, const std::string& body) { t += cat(k++, ". ", label, "：", body, "\n"); };
  line("定义", definition_of(c));
  line("病因", join_items(c.causes, "、") + "。");
  line("好发人群", join_items(c.risk_groups, "、") + "。");
  line("临床表现", join_items(c.symptoms, "、") + "。");
  line("辅助检查", join_items(c.examinations, "、") + "。");
  line("治疗原则", join_items(c.treatments, "、") + "。");
  if (!c.drugs.empty()) line("常用药物", join_items(c.drugs, "、") + "。");
  for (const auto& s : c.syndromes)
    line("辨证·" + s.name, join_items(s.symptoms, "、") + "；" + s.tongue_pulse + "；治法" + s.therapy + "；方药" + s.formula + "。");
  if (!c.complications.empty()) line("并发症", join_items(c.complications, "、") + "。");
  line("预防", join_items(c.prevention, "、") + "。");
  line("急诊指征", join_items(c.red_flags, "、") + "。");
  return t;
}

std::string health_management(const KbCondition& c, CorpusRng& rng) {
  std::string t = rng.pick(std::vector<std::string>{c.name + "患者的日常健康管理", c.name + "的家庭护理要点",
                                                    "与" + c.name + "长期相处"}) + "\n";
  t += definition_of(c) + "除了" + join_items(c.treatments) + "，日常管理同样重要。";
  t += "\n第一，" + state_items(c, Aspect::prevention, c.prevention, rng);
  t += "\n第二，遵医嘱复查" + join_items(c.examinations, "、") + "，及时了解病情变化。";
  if (!c.drugs.empty()) t += "\n第三，按时用药。" + state_items(c, Aspect::drugs, c.drugs, rng) + "不可自行停药或加量。";
  else t += "\n第三，坚持" + join_items(c.treatments) + "，不要轻信偏方。";
  t += "\n第四，学会识别危险信号：" + state_items(c, Aspect::red_flags, c.red_flags, rng);
  if (!c.complications.empty()) t += "做好这些，能减少" + join_items(c.complications) + "等并发症的发生。";
  return t;
}

std::string tcm_classic(const KbCondition& c, CorpusRng& rng) {
  std::string t = rng.pick(std::vector<std::string>{"论" + c.name, c.name + "证治", c.name + "辨治"}) + "\n";
  t += rng.pick(std::vector<std::string>{"夫" + c.name + "之为病，", c.name + "者，", "凡" + c.name + "，"});
  t += strip_period(c.summary) + "。其因有" + join_items(c.causes, "、") + "。常见" + join_items(c.symptoms, "、") + "。";
  t += "临证当辨证论治，其证有" + std::to_string(c.syndromes.size()) + "：";
  for (const auto& s : c.syndromes) t += syndrome_passage(c, s, rng);
  t += "调摄之法，宜" + join_items(c.prevention, "、") + "。若" + join_items(c.red_flags, "、") + "，急当就医，不可延误。";
  return t;
}

std::string document(DocKind kind, const KbCondition& c, CorpusRng& rng) {
  switch (kind) {
    case DocKind::encyclopedia: return encyclopedia(c, rng);
    case DocKind::education: return education(c, rng);
    case DocKind::case_report: return case_report(c, rng);
    case DocKind::qa_digest: return qa_digest(c, rng);
    case DocKind::study_notes: return study_notes(c, rng);
    case DocKind::health_management: return health_management(c, rng);
    case DocKind::tcm_classic: return tcm_classic(c, rng);
  }
  SW_CHECK(false);
}

// Appends further true statements about `c` until the document holds `min_chars` Han characters.
void grow(std::string& text, const KbCondition& c, int min_chars, CorpusRng& rng) {
  for (int round = 0; round < 40 && count_han_chars(text) < min_chars; ++round) {
    const int choice = static_cast<int>(rng.below(c.syndromes.empty() ? 3 : 4));
    if (choice == 0) {
      const Aspect a = rng.pick(available_aspects(c));
      add_paragraph(text, rng.pick(std::vector<std::string>{"问：", "有读者问：", "常有人问："}) + ask_about(c, a, rng) +
              "\n" + rng.pick(std::vector<std::string>{"答：", "医生答："}) + answer_about(c, a, rng));
    } else if (choice == 1) {
      const Patient p = make_patient(c, rng);
      text += "\n患者咨询：" + patient_question(c, p, rng) + "\n医生回复：" + doctor_answer(c, rng);
    } else if (choice == 2) {
      const Aspect a = rng.pick(available_aspects(c));
      add_paragraph(text, answer_about(c, a, rng));
    } else {
      add_paragraph(text, syndrome_passage(c, rng.pick(c.syndromes), rng));
    }
  }
}

std::vector<DocKind> kinds_for(const KbCondition& c) {
  std::vector<DocKind> kinds = {DocKind::encyclopedia, DocKind::education,         DocKind::case_report,
                                DocKind::qa_digest,    DocKind::study_notes,       DocKind::health_management};
  if (!c.syndromes.empty()) kinds.insert(kinds.end(), {DocKind::tcm_classic, DocKind::tcm_classic});
  return kinds;
}

json record(const std::string& text, const std::string& source, const std::string& department) {
  return json{{"id", ""}, {"text", text}, {"source", source}, {"department", department}};
}

// Materia medica pages: starting at herb i, herb entries until the page is long enough.
std::string materia_medica_page(const KnowledgeBase& kb, size_t first, int min_chars, CorpusRng& rng) {
  std::string t = rng.pick(std::vector<std::string>{"本草选读", "中药学笔记", "常用中药简介"});
  for (size_t k = 0; k < kb.herbs.size() && count_han_chars(t) < min_chars; ++k)
    add_paragraph(t, herb_passage(kb.herbs[(first + k) % kb.herbs.size()], rng));
  return t;
}

// Formulary pages: one formula, its herbs, the syndromes it treats; then neighbouring formulas.
std::string formulary_page(const KnowledgeBase& kb, size_t first, int min_chars, CorpusRng& rng) {
  std::string t = rng.pick(std::vector<std::string>{"方剂学笔记", "名方解析", "方剂选讲"});
  for (size_t k = 0; k < kb.formulas.size() && count_han_chars(t) < min_chars; ++k) {
    const KbFormula& f = kb.formulas[(first + k) % kb.formulas.size()];
    add_paragraph(t, formula_passage(kb, f, rng));
    for (const auto& c : kb.conditions)
      for (const auto& s : c.syndromes)
        if (s.formula == f.name) t += "主治" + c.name + s.name + "，症见" + join_items(s.symptoms, "、") + "。";
    if (k == 0)
      for (const auto& herb : f.herbs)
        if (const KbHerb* h = kb.find_herb(herb)) t += herb_passage(*h, rng);
  }
  return t;
}

}  // namespace

std::vector<json> generate_pretrain(const KnowledgeBase& kb, const CorpusOptions& options) {
  std::vector<json> out;
  for (const auto& c : kb.conditions) {
    CorpusRng rng = corpus_rng(options, "pretrain", c.id);
    const auto kinds = kinds_for(c);
    const size_t offset = rng.below(kinds.size());
    for (int i = 0; i < options.pretrain_per_condition; ++i) {
      const DocKind kind = kinds[(offset + static_cast<size_t>(i)) % kinds.size()];
      std::string text = document(kind, c, rng);
      grow(text, c, options.min_document_chars, rng);
      if (rng.percent(20)) add_paragraph(text, disclaimer_note(kb, rng));
      out.push_back(record(text, doc_source(kind), c.department));
    }
  }
  for (size_t i = 0; i < kb.herbs.size(); ++i) {
    CorpusRng rng = corpus_rng(options, "pretrain-herb", kb.herbs[i].name);
    out.push_back(record(materia_medica_page(kb, i, options.min_document_chars, rng), "materia_medica", "中医科"));
  }
  for (size_t i = 0; i < kb.formulas.size(); ++i) {
    CorpusRng rng = corpus_rng(options, "pretrain-formula", kb.formulas[i].name);
    out.push_back(record(formulary_page(kb, i, options.min_document_chars, rng), "formulary", "中医科"));
  }
  shuffle_and_number(out, options, "pretrain");
  return out;
}

}  // namespace stepwise
