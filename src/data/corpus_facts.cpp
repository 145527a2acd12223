// Training-split phrasings of knowledge-base facts (see corpus_facts.h). Every template states only facts of the
// condition it is filled with; variety comes from many templates and random (true) subsets of fact lists.
#include "data/corpus_facts.h"

#include <algorithm>
#include <string_view>
#include <unordered_set>

namespace stepwise {
namespace {

using Templates = std::vector<const char*>;

const Templates& question_templates(Aspect a) {
  static const AspectTable<Templates> table = {
      Templates{"{n}是什么病？", "什么是{n}？", "请介绍一下{n}。", "{n}是怎么一回事？", "能给我讲讲{n}吗？",
                "{n}属于什么样的疾病？"},  // summary
      Templates{"{n}有哪些症状？", "{n}的常见症状是什么？", "得了{n}会有什么表现？", "{n}一般会出现哪些不舒服？",
                "请问{n}的临床表现有哪些？", "{n}发作的时候人会有什么感觉？", "{n}早期有什么信号？"},  // symptoms
      Templates{"{n}是什么原因引起的？", "为什么会得{n}？", "{n}的病因有哪些？", "哪些因素会导致{n}？",
                "{n}是怎么得的？"},  // causes
      Templates{"哪些人容易得{n}？", "{n}的高发人群有哪些？", "什么样的人需要警惕{n}？",
                "{n}好发于哪些人？"},  // risk_groups
      Templates{"{n}需要做哪些检查？", "怀疑{n}应该查什么？", "确诊{n}要做什么检查？", "去医院看{n}一般会做哪些检查？",
                "{n}靠什么检查来诊断？"},  // examinations
      Templates{"{n}怎么治疗？", "{n}该如何治疗？", "{n}的治疗方法有哪些？", "得了{n}怎么办？",
                "{n}能治好吗？一般怎么治？"},  // treatments
      Templates{"{n}常用什么药？", "治疗{n}的常用药物有哪些？", "{n}吃什么药？", "{n}一般用哪些药物治疗？"},  // drugs
      Templates{"{n}有哪些并发症？", "{n}不治疗会有什么后果？", "{n}会引起哪些并发症？",
                "{n}拖着不管会怎么样？"},  // complications
      Templates{"如何预防{n}？", "{n}应该怎么预防？", "日常生活中怎样预防{n}？",
                "平时要注意什么才能不得{n}？"},  // prevention
      Templates{"{n}出现什么情况要马上去医院？", "{n}患者什么时候需要立即就医？", "{n}有哪些危险信号？",
                "{n}什么情况下必须赶紧去急诊？"},  // red_flags
  };
  return table[aspect_index(a)];
}

const Templates& statement_templates(Aspect a) {
  static const AspectTable<Templates> table = {
      Templates{"{n}是{items}。", "{n}，{items}。", "所谓{n}，是指{items}。"},  // summary
      Templates{"{n}的常见症状包括{items}。", "{n}主要表现为{items}等。", "得了{n}，常会出现{items}。",
                "{n}患者多有{items}等表现。"},  // symptoms
      Templates{"{n}的常见病因有{items}。", "{n}多与{items}等因素有关。", "引起{n}的原因主要包括{items}。"},  // causes
      Templates{"{n}的高发人群包括{items}。", "{items}更容易患{n}。", "{n}多见于{items}。"},  // risk_groups
      Templates{"诊断{n}常用的检查有{items}。", "怀疑{n}时，一般需要做{items}等检查。",
                "{n}的确诊主要依靠{items}。"},  // examinations
      Templates{"{n}的治疗方法主要包括{items}。", "治疗{n}，一般采取{items}等措施。",
                "{n}的治疗以{items}为主。"},  // treatments
      Templates{"治疗{n}的常用药物有{items}。", "{n}常用{items}等药物，须在医生指导下使用。",
                "{n}的药物治疗可选用{items}。"},  // drugs
      Templates{"{n}的常见并发症有{items}。", "{n}若不及时治疗，可能引起{items}。",
                "{n}可并发{items}。"},  // complications
      Templates{"预防{n}，要做到{items}。", "{n}的预防措施包括{items}。",
                "日常注意{items}，有助于预防{n}。"},  // prevention
      Templates{"{n}患者如出现{items}，应立即就医。", "{items}是{n}的危险信号，需马上到医院急诊。",
                "得了{n}，一旦发生{items}，要立刻去医院。"},  // red_flags
  };
  return table[aspect_index(a)];
}

bool contains_any(const std::string& text, const std::vector<const char*>& words) {
  for (const char* w : words)
    if (text.find(w) != std::string::npos) return true;
  return false;
}

}  // namespace

const char* aspect_slug(Aspect a) {
  switch (a) {
    case Aspect::summary: return "summary";
    case Aspect::symptoms: return "symptoms";
    case Aspect::causes: return "causes";
    case Aspect::risk_groups: return "risk_groups";
    case Aspect::examinations: return "examinations";
    case Aspect::treatments: return "treatments";
    case Aspect::drugs: return "drugs";
    case Aspect::complications: return "complications";
    case Aspect::prevention: return "prevention";
    case Aspect::red_flags: return "red_flags";
  }
  SW_CHECK(false);
}

const std::vector<std::string>& aspect_items(const KbCondition& c, Aspect a) {
  static const std::vector<std::string> none;
  switch (a) {
    case Aspect::summary: return none;
    case Aspect::symptoms: return c.symptoms;
    case Aspect::causes: return c.causes;
    case Aspect::risk_groups: return c.risk_groups;
    case Aspect::examinations: return c.examinations;
    case Aspect::treatments: return c.treatments;
    case Aspect::drugs: return c.drugs;
    case Aspect::complications: return c.complications;
    case Aspect::prevention: return c.prevention;
    case Aspect::red_flags: return c.red_flags;
  }
  SW_CHECK(false);
}

bool aspect_available(const KbCondition& c, Aspect a) { return a == Aspect::summary || !aspect_items(c, a).empty(); }

std::vector<Aspect> available_aspects(const KbCondition& c) {
  std::vector<Aspect> out;
  for (Aspect a : kAllAspects)
    if (aspect_available(c, a)) out.push_back(a);
  return out;
}

std::string clinic_of(const KbCondition& c) { return c.sub_department.empty() ? c.department : c.sub_department; }

std::string definition_of(const KbCondition& c) {
  if (c.summary.rfind(c.name, 0) == 0) return c.summary;  // the summary already starts with the name
  return c.name + "是" + strip_period(c.summary) + "。";
}

std::string ask_about(const KbCondition& c, Aspect a, CorpusRng& rng) {
  std::string name = c.name;
  if (!c.aliases.empty() && rng.percent(15)) name = rng.pick(c.aliases);
  return fill_template(rng.pick(question_templates(a)), {{"n", name}});
}

std::string state_items(const KbCondition& c, Aspect a, const std::vector<std::string>& items, CorpusRng& rng) {
  SW_CHECK(!items.empty());
  const std::string joined = a == Aspect::summary ? strip_period(items[0])
                             : a == Aspect::red_flags ? join_items(items, "或")
                                                      : join_items(items);
  return fill_template(rng.pick(statement_templates(a)), {{"n", c.name}, {"items", joined}});
}

std::string answer_about(const KbCondition& c, Aspect a, CorpusRng& rng) {
  std::string out;
  if (rng.percent(40)) out += rng.pick(std::vector<std::string>{"您好，", "你好，", "这个问题很常见。", "您好！"});
  const std::vector<std::string> items = a == Aspect::summary ? std::vector<std::string>{c.summary} : aspect_items(c, a);
  out += state_items(c, a, items, rng);
  switch (a) {
    case Aspect::symptoms:
    case Aspect::summary:
      if (rng.percent(50)) out += "如有相关不适，建议到" + clinic_of(c) + "就诊，做" + join_items(c.examinations) + "等检查明确诊断。";
      break;
    case Aspect::examinations:
      if (rng.percent(50)) out += "可以先到" + clinic_of(c) + "就诊，由医生根据情况安排。";
      break;
    case Aspect::treatments:
    case Aspect::drugs:
      if (rng.percent(60)) out += "具体方案须由医生根据病情制定，不要自行用药或停药。";
      break;
    case Aspect::complications:
      if (rng.percent(50)) out += "因此要积极治疗，并注意" + join_items(c.prevention) + "。";
      break;
    default:
      break;
  }
  if (a != Aspect::red_flags && rng.percent(35)) out += "如果出现" + join_items(c.red_flags, "或") + "，请立即就医。";
  return out;
}

Patient make_patient(const KbCondition& c, CorpusRng& rng) {
  std::string groups;
  for (const auto& g : c.risk_groups) groups += g;
  Patient p;
  p.sex = rng.percent(50) ? "男" : "女";
  if (c.department == "儿科" || contains_any(groups, {"儿童", "婴", "幼", "小儿", "新生儿", "患儿"})) {
    p.child = true;
    p.age = rng.range(1, 9);
  } else if (c.department == "妇产科" || contains_any(groups, {"女性", "孕", "妇女", "产妇", "经期"})) {
    p.sex = "女";
    p.age = rng.range(22, 45);
  } else if (contains_any(groups, {"老年"})) {
    p.age = rng.range(50, 78);
  } else {
    p.age = rng.range(18, 70);
  }
  if (p.child)
    p.who = cat("我家孩子", p.age, "岁，", p.sex == "男" ? "男孩" : "女孩");
  else
    p.who = cat("我今年", p.age, "岁，", p.sex);
  return p;
}

std::string duration_phrase(CorpusRng& rng) {
  static const std::vector<std::string> d = {"两三天", "一周", "半个月", "一个多月", "三个月", "半年", "好几天",
                                             "十来天"};
  return rng.pick(d);
}

std::string patient_question(const KbCondition& c, const Patient& p, CorpusRng& rng) {
  static const Templates openings = {"医生您好，", "大夫你好，", "你好医生，", "医生，麻烦问一下，", ""};
  static const Templates bodies = {
      "{who}，最近{dur}总是{sym}，{ask}", "{who}。这{dur}一直{sym}，{ask}",
      "{who}，{dur}前开始出现{sym}，到现在也没好，{ask}", "{who}，近{dur}反复{sym}，{ask}"};
  static const Templates asks = {"请问这是怎么回事？", "这是什么病？需要去医院吗？", "该挂什么科？要做哪些检查？",
                                 "严重吗？应该怎么办？", "想问问可能是什么问题。"};
  const auto symptoms = rng.subset(c.symptoms, 2, 4);
  std::string sym = join_items(symptoms, "、");
  if (p.child) sym = rng.percent(50) ? "有" + sym + "的情况" : sym;
  return std::string(rng.pick(openings)) +
         fill_template(rng.pick(bodies), {{"who", p.who}, {"dur", duration_phrase(rng)}, {"sym", sym},
                                          {"ask", rng.pick(asks)}});
}

std::string doctor_answer(const KbCondition& c, CorpusRng& rng) {
  static const Templates openings = {"您好，根据您描述的情况，", "你好，从症状来看，", "您好！结合您说的这些表现，"};
  std::string out = rng.pick(openings);
  out += rng.pick(std::vector<std::string>{"需要考虑" + c.name + "的可能。", "要警惕" + c.name + "。",
                                           "比较符合" + c.name + "的表现。"});
  if (rng.percent(60)) out += definition_of(c);
  out += "建议" + std::string(rng.percent(50) ? "尽快" : "") + "到" + clinic_of(c) + "就诊，完善" +
         join_items(rng.subset(c.examinations, 1, 3)) + "等检查以明确诊断。";
  if (rng.percent(70)) out += "治疗上一般采用" + join_items(c.treatments) + "。";
  if (!c.drugs.empty() && rng.percent(30)) out += "常用药物有" + join_items(c.drugs) + "，须遵医嘱使用。";
  if (rng.percent(60)) out += "平时注意" + join_items(rng.subset(c.prevention, 2, 4)) + "。";
  out += "如果出现" + join_items(c.red_flags, "或") + "，请立即到医院急诊。";
  return out;
}

std::string syndrome_passage(const KbCondition& c, const KbSyndrome& s, CorpusRng& rng) {
  static const Templates t = {
      "{n}之{s}，症见{sym}，{tp}。治宜{th}，方用{f}。", "{s}：{sym}，{tp}。治法：{th}。方药：{f}加减。",
      "{n}属{s}者，多见{sym}，{tp}，治当{th}，以{f}为主方。", "若见{sym}，{tp}，此为{n}{s}，宜{th}，{f}主之。"};
  return fill_template(rng.pick(t), {{"n", c.name}, {"s", s.name}, {"sym", join_items(s.symptoms, "、")},
                                     {"tp", s.tongue_pulse}, {"th", s.therapy}, {"f", s.formula}});
}

std::string formula_passage(const KnowledgeBase& kb, const KbFormula& f, CorpusRng& rng) {
  static const Templates t = {"{f}，出自{src}，由{herbs}组成，功效{eff}。", "{f}源于{src}。方中{herbs}配伍，共奏{eff}之功。",
                              "{f}（{src}）：组成为{herbs}；功用为{eff}。"};
  std::string out = fill_template(rng.pick(t), {{"f", f.name}, {"src", f.source},
                                                {"herbs", join_items(f.herbs, "、")}, {"eff", f.effect}});
  if (rng.percent(50)) {
    const KbHerb* h = kb.find_herb(rng.pick(f.herbs));
    if (h) out += "方中" + h->name + "性味" + h->nature + "，归" + join_items(h->meridians, "、") + "，能" + h->effects + "。";
  }
  return out;
}

std::string herb_passage(const KbHerb& h, CorpusRng& rng) {
  static const Templates t = {"{h}，性味{nat}，归{mer}。功效：{eff}。", "{h}性味{nat}，入{mer}，功能{eff}。",
                              "【{h}】性味：{nat}。归经：{mer}。功效：{eff}。"};
  return fill_template(rng.pick(t), {{"h", h.name}, {"nat", h.nature}, {"mer", join_items(h.meridians, "、")},
                                     {"eff", h.effects}});
}

namespace {

// Every substring of `text` that starts and ends at UTF-8 character boundaries.
std::vector<std::string> substrings(const std::string& text) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < text.size(); ++i)
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) starts.push_back(i);
  starts.push_back(text.size());
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < starts.size(); ++i)
    for (size_t j = i + 1; j < starts.size(); ++j) out.push_back(text.substr(starts[i], starts[j] - starts[i]));
  return out;
}

void add_owner(std::vector<int>& owners, int index) {
  if (owners.empty() || owners.back() != index) owners.push_back(index);  // conditions are added in index order
}

}  // namespace

FactOverlap::FactOverlap(const KnowledgeBase& kb) : kb_(kb) {
  for (size_t i = 0; i < kb.conditions.size(); ++i) {
    const int index = static_cast<int>(i);
    for (const auto& fact : condition_facts(kb.conditions[i])) {
      add_owner(fact_owners_[fact], index);
      for (const auto& part : substrings(fact)) add_owner(substring_owners_[part], index);
    }
  }
}

const std::vector<int>& FactOverlap::owners(const std::string& item) const {
  auto cached = cache_.find(item);
  if (cached != cache_.end()) return cached->second;
  std::vector<int> found;
  if (auto it = substring_owners_.find(item); it != substring_owners_.end()) found = it->second;  // item inside a fact
  for (const auto& part : substrings(item))                                                        // a fact inside item
    if (auto it = fact_owners_.find(part); it != fact_owners_.end()) found.insert(found.end(), it->second.begin(), it->second.end());
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return cache_.emplace(item, std::move(found)).first->second;
}

size_t FactOverlap::index_of(const KbCondition& c) const {
  SW_CHECK(!kb_.conditions.empty() && &c >= &kb_.conditions.front() && &c <= &kb_.conditions.back());
  return static_cast<size_t>(&c - &kb_.conditions.front());
}

bool FactOverlap::overlaps(const KbCondition& c, const std::string& item) const {
  const auto& o = owners(item);
  return std::binary_search(o.begin(), o.end(), static_cast<int>(index_of(c)));
}

std::vector<std::string> FactOverlap::foreign_items(const KbCondition& c, Aspect a) const {
  const int self = static_cast<int>(index_of(c));
  std::vector<std::string> out;
  std::unordered_set<std::string_view> seen;  // lookups only; the output order is the KB's
  auto consider = [&](const std::string& item) {
    if (seen.count(item)) return;
    seen.insert(item);
    const auto& o = owners(item);
    if (!std::binary_search(o.begin(), o.end(), self)) out.push_back(item);
  };
  for (const auto& other : kb_.conditions) {
    if (&other == &c) continue;
    if (a == Aspect::summary) {
      consider(other.summary);
    } else {
      for (const auto& item : aspect_items(other, a)) consider(item);
    }
  }
  return out;
}

std::string disclaimer_note(const KnowledgeBase& kb, CorpusRng& rng) {
  if (rng.percent(50)) return "（注：" + strip_period(kb.disclaimer) + "。）";
  return "【说明】" + kb.disclaimer;
}

}  // namespace stepwise
