// Chat templates (Jinja, as in tokenizer_config.json `chat_template` or GGUF
// `tokenizer.chat_template`) rendered with `@huggingface/jinja`, the engine transformers.js uses,
// with the same variables: messages, add_generation_prompt, bos_token, eos_token, plus extras
// (tools, documents, ...). The rendered text already holds BOS where the template writes it, so
// encode it with `addBos: false` (encodeChat does). No DOM.
import { Template } from '@huggingface/jinja';
import type { Tokenizer } from './types.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | string;
  content: string;
  [extra: string]: unknown;
}

export interface ChatTemplateOptions {
  /** end with the assistant turn's header, ready for generation (default false) */
  addGenerationPrompt?: boolean;
  bosToken?: string | null;
  eosToken?: string | null;
  /** more template variables (tools, documents, custom flags) */
  extra?: Record<string, unknown>;
}

const cache = new Map<string, Template>();

function compile(template: string): Template {
  let t = cache.get(template);
  if (!t) {
    try {
      t = new Template(template);
    } catch (e) {
      throw new Error(`chat template does not parse: ${(e as Error).message}`);
    }
    if (cache.size > 16) cache.clear();
    cache.set(template, t);
  }
  return t;
}

/** Render a chat template to text. */
export function applyChatTemplate(template: string, messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
  const t = compile(template);
  const vars: Record<string, unknown> = {
    messages,
    add_generation_prompt: opts.addGenerationPrompt ?? false,
    ...(opts.bosToken != null ? { bos_token: opts.bosToken } : {}),
    ...(opts.eosToken != null ? { eos_token: opts.eosToken } : {}),
    ...opts.extra,
  };
  try {
    return t.render(vars);
  } catch (e) {
    throw new Error(`chat template failed to render: ${(e as Error).message}`);
  }
}

/** Render a chat with the tokenizer's BOS/EOS strings and encode it (no extra BOS). */
export function encodeChat(tok: Tokenizer, template: string, messages: ChatMessage[], opts: Omit<ChatTemplateOptions, 'bosToken' | 'eosToken'> = {}): number[] {
  const text = applyChatTemplate(template, messages, { ...opts, bosToken: tok.bosToken, eosToken: tok.eosToken });
  return tok.encode(text, { addBos: false });
}
