// Binds a Jinja chat template (tokenizer_config.json `chat_template`, GGUF
// `tokenizer.chat_template`) to the ChatRenderer shape the dataset layer takes, through
// src/tokenizer's applyChatTemplate (@huggingface/jinja) with the tokenizer's BOS/EOS strings.
// It is not: the template engine itself (src/tokenizer/chat.ts).
import { applyChatTemplate } from '../tokenizer/chat.ts';
import type { ChatRenderer } from './types.ts';

export function chatRenderer(template: string, tok: { bosToken: string | null; eosToken: string | null }): ChatRenderer {
  return (messages, { addGenerationPrompt }) =>
    applyChatTemplate(template, messages.map((m) => ({ role: m.role, content: m.content })), { addGenerationPrompt, bosToken: tok.bosToken, eosToken: tok.eosToken });
}
