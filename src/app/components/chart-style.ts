/** Shared look of the recharts tooltips (the theme's panel colours). */
export const tooltipStyle = {
  background: 'var(--panel-2)',
  border: '1px solid var(--border)',
  borderRadius: 8,
  fontSize: 12,
};
