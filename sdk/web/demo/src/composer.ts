// The message box: Enter or the button sends the trimmed text, then clears the box.
export function bindComposer(form: HTMLFormElement, send: (text: string) => void): void {
  const input = form.elements.namedItem("text") as HTMLInputElement;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    send(text);
    input.value = "";
    input.focus();
  });
}

export function enableComposer(form: HTMLFormElement, enabled: boolean): void {
  for (const element of Array.from(form.elements)) {
    (element as HTMLInputElement | HTMLButtonElement).disabled = !enabled;
  }
}
