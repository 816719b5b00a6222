// Tokenizers: the shared contract and its implementations (HF tokenizer.json, GGUF llama/gpt2),
// plus chat templates. See ./types.ts.
export type { DecodeOptions, EncodeOptions, Tokenizer } from './types.ts';
export { HfTokenizer, type HfTokenizerOptions } from './hf.ts';
export { SpmTokenizer, type SpmVocab } from './spm.ts';
export { tokenizerFromGGUF, ggufChatTemplate } from './gguf.ts';
export { applyChatTemplate, encodeChat, type ChatMessage, type ChatTemplateOptions } from './chat.ts';
