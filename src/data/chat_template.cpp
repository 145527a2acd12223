// Rendering of conversations with the stepwise chat template (see chat_template.h).
#include "data/chat_template.h"

#include "core/error.h"

namespace stepwise {
namespace {

int32_t role_token(const Tokenizer& t, ChatRole role) {
  switch (role) {
    case ChatRole::system: return t.system();
    case ChatRole::user: return t.user();
    case ChatRole::assistant: return t.assistant();
  }
  SW_CHECK(false);
}

std::string_view role_text(ChatRole role) {
  switch (role) {
    case ChatRole::system: return kSystemToken;
    case ChatRole::user: return kUserToken;
    case ChatRole::assistant: return kAssistantToken;
  }
  SW_CHECK(false);
}

void append_turn(const Tokenizer& t, const ChatMessage& m, RenderedChat& out) {
  const uint8_t trained = m.role == ChatRole::assistant;
  out.tokens.push_back(role_token(t, m.role));
  out.loss_mask.push_back(0);
  for (int32_t id : t.encode_literal(m.content)) {
    out.tokens.push_back(id);
    out.loss_mask.push_back(trained);
  }
  out.tokens.push_back(t.eot());
  out.loss_mask.push_back(trained);
}

}  // namespace

const char* chat_role_name(ChatRole role) {
  switch (role) {
    case ChatRole::system: return "system";
    case ChatRole::user: return "user";
    case ChatRole::assistant: return "assistant";
  }
  SW_CHECK(false);
}

ChatRole parse_chat_role(const std::string& name, const std::string& where) {
  if (name == "system") return ChatRole::system;
  if (name == "user") return ChatRole::user;
  if (name == "assistant") return ChatRole::assistant;
  fail(where, ": unknown role '", name, "' (expected system, user or assistant)");
}

Conversation conversation_from_json(const json& turns, const std::string& where) {
  if (!turns.is_array()) fail(where, ": field 'conversations' must be an array of {role, content}");
  Conversation out;
  for (size_t i = 0; i < turns.size(); ++i) {
    const std::string at = cat(where, ": conversations[", i, "]");
    const json& turn = turns[i];
    if (!turn.is_object() || !turn.contains("role") || !turn["role"].is_string())
      fail(at, ": missing string field 'role'");
    if (!turn.contains("content") || !turn["content"].is_string()) fail(at, ": missing string field 'content'");
    ChatMessage m{parse_chat_role(turn["role"].get<std::string>(), at), turn["content"].get<std::string>()};
    if (m.role == ChatRole::system && i != 0) fail(at, ": a system turn may only come first");
    out.push_back(std::move(m));
  }
  if (out.empty()) fail(where, ": field 'conversations' is empty");
  return out;
}

json conversation_to_json(const Conversation& conversation) {
  json out = json::array();
  for (const ChatMessage& m : conversation) out.push_back({{"role", chat_role_name(m.role)}, {"content", m.content}});
  return out;
}

RenderedChat render_conversation(const Tokenizer& tokenizer, const Conversation& conversation) {
  RenderedChat out;
  for (const ChatMessage& m : conversation) append_turn(tokenizer, m, out);
  return out;
}

std::vector<int32_t> render_prompt(const Tokenizer& tokenizer, const Conversation& conversation) {
  RenderedChat out = render_conversation(tokenizer, conversation);
  out.tokens.push_back(tokenizer.assistant());
  return std::move(out.tokens);
}

std::vector<int32_t> render_reply(const Tokenizer& tokenizer, const std::string& reply) {
  std::vector<int32_t> out = tokenizer.encode_literal(reply);
  out.push_back(tokenizer.eot());
  return out;
}

std::string render_conversation_text(const Conversation& conversation) {
  std::string out;
  for (const ChatMessage& m : conversation) out += cat(role_text(m.role), m.content, kEndOfTurnToken);
  return out;
}

std::string render_prompt_text(const Conversation& conversation) {
  return cat(render_conversation_text(conversation), kAssistantToken);
}

const char* chat_template_jinja() {
  return "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|end_of_turn|>{% endfor %}"
         "{% if add_generation_prompt %}<|assistant|>{% endif %}";
}

}  // namespace stepwise
