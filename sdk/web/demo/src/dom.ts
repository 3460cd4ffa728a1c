// The page's element of `id`; the pages' HTML has every id the scripts use.
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}
