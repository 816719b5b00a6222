// src/export: LoRA adapters out of whittle (PEFT, GGUF adapter, merged model, cluster recipe) and
// PEFT adapters into it. See ./README.md. No DOM, no node:* (the CLI, src/cli/export.ts, adds
// the file system).
export {
  type Adapter, type AdapterBase, type ExportDtype, type FileSink, type PeftNamedAdapter, EXPORT_DTYPES, GGUF_TENSOR, HF_MODULE, HF_PARENT,
  adapterFromParams, adapterFromTrained, baseOf, checkTensors, describeConfig, fitAdapter, ggufPermutesQK, memorySink, parsePeftName,
  peftName, permuteRows, reorient, targetOfModule,
} from './adapter.ts';
export {
  type PeftExportOptions, type PeftImportOptions, type WhittleAdapterMeta, PEFT_CONFIG, PEFT_WEIGHTS, PEFT_WEIGHTS_BIN, WHITTLE_META,
  exportPeft, importPeft, parsePeftConfig, peftConfigJson, sortedJson,
} from './peft.ts';
export { type GgufLoraOptions, exportGgufLora, ggufAlpha, ggufLoraBytes, llamaCppArch } from './gguf-lora.ts';
export {
  type ExportResult, type MergeBase, type MergedExportOptions, type MergedGgufOptions, TOKENIZER_FILES, exportMerged, exportMergedGGUF,
  hfConfigJson, hfTensors, mergedWeightsHF,
} from './merged.ts';
export {
  type DataShape, type RecipeFormat, type RecipeHyperparameters, type RecipeInput, RECIPE_REQUIREMENTS, axolotlYaml, exportRecipe,
  hfScheduler, inspectJsonl, trlScript, yamlNum,
} from './recipe.ts';
