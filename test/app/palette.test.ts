import { describe, expect, it } from 'vitest';
import { GOLDEN_ANGLE, RUN_PALETTE, runColor } from '../../src/app/palette';
import { toggled } from '../../src/app/components/hidden-runs';

/** CIE L*a*b* of an sRGB hex colour (D65), for a perceptual distance. */
function lab(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.slice(1), 16);
  const [r, g, b] = [n >> 16, (n >> 8) & 255, n & 255].map((v) => {
    const c = v / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const f = (t: number) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
  const x = f((r * 0.4124 + g * 0.3576 + b * 0.1805) / 0.95047);
  const y = f(r * 0.2126 + g * 0.7152 + b * 0.0722);
  const z = f((r * 0.0193 + g * 0.1192 + b * 0.9505) / 1.08883);
  return [116 * y - 16, 500 * (x - y), 200 * (y - z)];
}

const hueOf = (hsl: string) => Number(/^hsl\(([\d.]+),/.exec(hsl)![1]);

describe('run colours', () => {
  it('has at least 20 fixed colours, clearly apart from each other (ΔE ≥ 20)', () => {
    expect(RUN_PALETTE.length).toBeGreaterThanOrEqual(20);
    const labs = RUN_PALETTE.map(lab);
    for (let i = 0; i < labs.length; i++)
      for (let j = i + 1; j < labs.length; j++) {
        const d = Math.hypot(...labs[i].map((v, k) => v - labs[j][k]));
        expect(d, `${RUN_PALETTE[i]} vs ${RUN_PALETTE[j]}`).toBeGreaterThanOrEqual(20);
      }
  });

  it('gives every run a distinct colour, well past the palette (the old one repeated after 9)', () => {
    const colors = Array.from({ length: 1000 }, (_, i) => runColor(i));
    expect(new Set(colors).size).toBe(1000);
    expect(runColor(9)).not.toBe(runColor(0));
    expect(colors.slice(0, RUN_PALETTE.length)).toEqual(RUN_PALETTE);
  });

  it('keeps the original nine colours for the first nine runs', () => {
    expect(RUN_PALETTE.slice(0, 9)).toEqual([
      '#7aa2ff',
      '#ff9e64',
      '#5eead4',
      '#f472b6',
      '#facc15',
      '#a78bfa',
      '#4ade80',
      '#fb7185',
      '#38bdf8',
    ]);
  });

  it('steps the generated hues by the golden angle', () => {
    const n = RUN_PALETTE.length;
    for (let i = n; i < n + 30; i++) {
      const step = (hueOf(runColor(i + 1)) - hueOf(runColor(i)) + 360) % 360;
      expect(step).toBeCloseTo(GOLDEN_ANGLE, 0);
    }
  });

  it('is a function of the position alone (a run keeps its colour)', () => {
    expect(runColor(42)).toBe(runColor(42));
    expect(runColor(-1)).toBe(runColor(0));
  });
});

describe('legend toggles', () => {
  it('hides a run, then shows it again, without mutating the set React holds', () => {
    const none: ReadonlySet<string> = new Set();
    const hidden = toggled(none, 'a');
    expect([...hidden]).toEqual(['a']);
    expect(none.size).toBe(0);
    expect([...toggled(hidden, 'a')]).toEqual([]);
    expect([...toggled(hidden, 'b')].sort()).toEqual(['a', 'b']);
  });
});
