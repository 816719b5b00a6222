// One page section (Models, Datasets, Train, Playground, Adapters, Device): an id for the URL
// hash, a title for the navigation, its element, and an optional hook run each time it is shown
// (to refresh what may have changed while another section was open).
export interface Section {
  id: string;
  title: string;
  el: HTMLElement;
  onShow?(): void;
}
