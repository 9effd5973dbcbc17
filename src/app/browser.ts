/**
 * The page's conveniences the store uses: what the last session loaded (localStorage), and handing a file to
 * the user. The DOM is touched only when these are called, never at import.
 */

type Remembered = 'model' | 'dataset' | 'weights';

/** Which model and dataset the last session used ('demo' is reloaded automatically), and the weight storage. */
export function remember(what: Remembered, value: string) {
  try {
    localStorage.setItem(`lora-studio:${what}`, value);
  } catch {
    // Storage can be disabled; remembering is a convenience.
  }
}

export function remembered(what: Remembered): string | null {
  try {
    return localStorage.getItem(`lora-studio:${what}`);
  } catch {
    return null;
  }
}

/** Saves `bytes` (a zip) as `fileName` through the browser's downloads. */
export function download(fileName: string, bytes: Uint8Array) {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/zip' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
