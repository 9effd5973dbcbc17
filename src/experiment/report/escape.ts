/** Escaping of user strings (config names, paths, errors) for the report's three text formats. */

const HTML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe in HTML and SVG content and in double- or single-quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ENTITIES[c]);
}

/**
 * Text safe in a Markdown paragraph or table cell: markup characters backslash-escaped, HTML's specials as entities
 * (renderers pass raw HTML through), and line breaks folded (a newline would end a table row).
 */
export function escapeMarkdown(text: string): string {
  return (
    text
      .replace(/\r\n|\r|\n/g, ' ')
      .replace(/[\\`*[\]|#]/g, (c) => `\\${c}`)
      // An underscore inside a word (q_proj) never starts emphasis: only those at a word's edge are escaped.
      .replace(/(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])/g, '\\_')
      .replace(/[&<>]/g, (c) => HTML_ENTITIES[c])
  );
}

/** A fenced code block whose fence is longer than any run of backticks in the text, so nothing can close it early. */
export function markdownCodeBlock(text: string, language = ''): string {
  const longestRun = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(Math.max(3, longestRun + 1));
  return `${fence}${language}\n${text}\n${fence}`;
}
