// One page section (Device now; Models, Datasets, Train, Playground, Adapters as they land):
// an id for the URL hash, a title for the navigation, and its element. Sections are added to
// the list in src/ui/main.ts only when they work.
export interface Section {
  id: string;
  title: string;
  el: HTMLElement;
}
