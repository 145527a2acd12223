// The one chat template of stepwise, shared by SFT, DPO, serving and eval:
//   <|system|>S<|end_of_turn|><|user|>U<|end_of_turn|><|assistant|>A<|end_of_turn|>...
// (no newlines or spaces added). Turn contents are encoded literally: a "<|user|>" typed inside a message stays text.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/jsonl.h"
#include "data/tokenizer.h"

namespace stepwise {

enum class ChatRole { system, user, assistant };

struct ChatMessage {
  ChatRole role = ChatRole::user;
  std::string content;
};
using Conversation = std::vector<ChatMessage>;

// A rendered conversation; loss_mask[i] == 1 exactly on assistant content tokens and their <|end_of_turn|>.
struct RenderedChat {
  std::vector<int32_t> tokens;     // (L,)
  std::vector<uint8_t> loss_mask;  // (L,)
};

const char* chat_role_name(ChatRole role);
// "system" | "user" | "assistant"; Error naming `where` otherwise.
ChatRole parse_chat_role(const std::string& name, const std::string& where);
// Parses [{"role","content"},...]; checks roles, string contents and that a system turn comes only first.
// `where` (e.g. "sft.jsonl:12") prefixes every error.
Conversation conversation_from_json(const json& turns, const std::string& where);
json conversation_to_json(const Conversation& conversation);

// Whole conversation as training tokens + mask (SFT).
RenderedChat render_conversation(const Tokenizer& tokenizer, const Conversation& conversation);
// Prompt for generation: the turns, then <|assistant|> (the model continues with the reply and <|end_of_turn|>).
std::vector<int32_t> render_prompt(const Tokenizer& tokenizer, const Conversation& conversation);
// An assistant reply as it follows render_prompt: content tokens then <|end_of_turn|> (DPO chosen / rejected).
std::vector<int32_t> render_reply(const Tokenizer& tokenizer, const std::string& reply);

// Text forms (for the HTTP server and for logs): the same template as strings. encode() of this text gives the
// same ids as render_* when no content contains a special-token string.
std::string render_conversation_text(const Conversation& conversation);
std::string render_prompt_text(const Conversation& conversation);
// The template as a Jinja string (HF tokenizer_config.json "chat_template"), equivalent to render_prompt_text.
const char* chat_template_jinja();

}  // namespace stepwise
