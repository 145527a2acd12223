// Shared pieces of the eval backends: prompt-style names and the split of a scored text into context and
// continuation tokens (for token ids in process and for token strings over HTTP).
#include "eval/runner_backend.h"

#include <cmath>

#include "core/error.h"

namespace stepwise::eval {

const char* prompt_style_name(PromptStyle style) { return style == PromptStyle::chat ? "chat" : "plain"; }

PromptStyle parse_prompt_style(const std::string& name) {
  if (name == "chat") return PromptStyle::chat;
  if (name == "plain") return PromptStyle::plain;
  fail("prompt style '", name, "' is not one of chat, plain");
}

template <class Token>
OptionLogProb continuation_logprob(const std::vector<Token>& context, const std::vector<Token>& full,
                                   const std::vector<double>& full_logprobs, const std::string& what) {
  SW_CHECK(full_logprobs.size() == full.size());
  size_t start = 0;
  while (start < context.size() && start < full.size() && context[start] == full[start]) ++start;
  start = std::max<size_t>(start, 1);  // the first token has no log-prob: it can only be context
  if (start >= full.size())
    fail(what, ": the continuation adds no token to the context (", context.size(), " context tokens, ", full.size(),
         " in context + continuation)");
  OptionLogProb out;
  out.logprob = 0.0;
  for (size_t i = start; i < full.size(); ++i) {
    if (!std::isfinite(full_logprobs[i])) fail(what, ": log-prob of token ", i, " is not finite");
    out.logprob += full_logprobs[i];
  }
  out.num_tokens = static_cast<int64_t>(full.size() - start);
  return out;
}

template OptionLogProb continuation_logprob<int32_t>(const std::vector<int32_t>&, const std::vector<int32_t>&,
                                                     const std::vector<double>&, const std::string&);
template OptionLogProb continuation_logprob<std::string>(const std::vector<std::string>&,
                                                         const std::vector<std::string>&, const std::vector<double>&,
                                                         const std::string&);

}  // namespace stepwise::eval
