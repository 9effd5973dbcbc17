/** A run's tags as the card edits them: typed as one comma-separated line, kept as a clean list. Pure. */

/** The longest tag kept: tags are labels for filtering, not notes. */
export const TAG_MAX_LENGTH = 40;

/** "baseline, tiny ,, Baseline" -> ["baseline", "tiny"]: the line split at commas, then cleaned (cleanTags). */
export function parseTags(text: string): string[] {
  return cleanTags(text.split(','));
}

/**
 * Tags trimmed, inner spaces collapsed, empty ones dropped, duplicates dropped without regard to case (the first
 * spelling stays), each cut at TAG_MAX_LENGTH.
 */
export function cleanTags(list: readonly string[]): string[] {
  const tags: string[] = [];
  const seen = new Set<string>();
  for (const part of list) {
    const tag = part.trim().replace(/\s+/g, ' ').slice(0, TAG_MAX_LENGTH).trim();
    const key = tag.toLowerCase();
    if (!tag || seen.has(key)) continue;
    seen.add(key);
    tags.push(tag);
  }
  return tags;
}

/** The editable line of a tag list (parseTags reads it back to the same list). */
export function tagsText(tags: readonly string[]): string {
  return tags.join(', ');
}

/** Whether `tags` holds `tag`, without regard to case (the filter matches as parseTags dedupes). */
export function hasTag(tags: readonly string[], tag: string): boolean {
  const key = tag.toLowerCase();
  return tags.some((t) => t.toLowerCase() === key);
}
