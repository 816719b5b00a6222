// Vite's `?raw` imports of the built-in example datasets (src/ui/examples/*.jsonl): the file's text.
declare module '*.jsonl?raw' {
  const text: string;
  export default text;
}
