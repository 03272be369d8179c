// WCAG 2.1 AA contrast of the console's colours, computed from console.css itself:
// text at least 4.5:1 against what it is drawn on (1.4.3), map marks and focus rings at
// least 3:1 (1.4.11). Every rule that sets both `color` and a background is checked as
// a pair; the pairs below name what is drawn on what elsewhere. A selector or property
// missing from the stylesheet fails the check (the table follows the CSS). No
// dependencies: `node tests/browser/contrast.mjs [path/to/console.css]`.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const here = fileURLToPath(new URL('.', import.meta.url));
const cssPath = process.argv[2] || `${here}../../crates/precinct-api/console/console.css`;
const css = readFileSync(cssPath, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');

// selector -> { property: value }, for plain `a, b { ... }` rules (media blocks skipped).
const rules = new Map();
for (const m of css.replace(/@media[^{]*\{(?:[^{}]*\{[^}]*\})*\s*\}/g, '').matchAll(/([^{}]+)\{([^}]*)\}/g)) {
  const props = {};
  for (const decl of m[2].split(';')) {
    const i = decl.indexOf(':');
    if (i > 0) props[decl.slice(0, i).trim()] = decl.slice(i + 1).trim();
  }
  for (const sel of m[1].split(',').map((s) => s.trim()).filter(Boolean)) {
    rules.set(sel, { ...(rules.get(sel) || {}), ...props });
  }
}

function hex(value) {
  const m = /#([0-9a-f]{3}|[0-9a-f]{6})\b/i.exec(value || '');
  if (!m) return null;
  const h = m[1].length === 3 ? [...m[1]].map((c) => c + c).join('') : m[1];
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
}

function luminance([r, g, b]) {
  const lin = (c) => { const s = c / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

function ratio(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

function colour(selector, property) {
  const props = rules.get(selector);
  assert.ok(props, `no rule for ${selector} in ${cssPath}`);
  const value = props[property] ?? (property === 'background' ? props['background-color'] : undefined);
  const rgb = hex(value);
  assert.ok(rgb, `${selector} has no hex ${property} (${value})`);
  return rgb;
}

const TEXT = 4.5;
const GRAPHIC = 3;
// [what, foreground (selector, property), background (selector, property), minimum]
const PAIRS = [
  ['body text', [':root', 'color'], [':root', 'background'], TEXT],
  ['notices', ['#notice', 'color'], [':root', 'background'], TEXT],
  ['the header bar', ['.bar', 'color'], ['.bar', 'background'], TEXT],
  ['buttons', ['button', 'color'], ['button', 'background'], TEXT],
  ['the pressed tab', ['#tabs button[aria-pressed="true"]', 'color'], ['#tabs button[aria-pressed="true"]', 'background'], TEXT],
  ['a hovered queue row', [':root', 'color'], ['tbody tr:hover', 'background'], TEXT],
  ['SLA on time', ['.sla-ok', 'color'], [':root', 'background'], TEXT],
  ['SLA on time, hovered', ['.sla-ok', 'color'], ['tbody tr:hover', 'background'], TEXT],
  ['SLA amber', ['.sla-amber', 'color'], ['.sla-amber', 'background'], TEXT],
  ['SLA red', ['.sla-red', 'color'], ['.sla-red', 'background'], TEXT],
  ['the invite link', ['summary', 'color'], [':root', 'background'], TEXT],
  ['map labels', ['.label', 'fill'], ['#map', 'background'], TEXT],
  ['map labels on the area', ['.label', 'fill'], ['.area', 'fill'], TEXT],
  ['report pins', ['.pin', 'fill'], ['#map', 'background'], GRAPHIC],
  ['report pins on the area', ['.pin', 'fill'], ['.area', 'fill'], GRAPHIC],
  ['available patrols', ['.patrol.AVAILABLE', 'fill'], ['.area', 'fill'], GRAPHIC],
  ['busy patrols', ['.patrol.BUSY', 'fill'], ['.area', 'fill'], GRAPHIC],
  ['off-duty patrols', ['.patrol.OFF_DUTY', 'fill'], ['.area', 'fill'], GRAPHIC],
  ['the area edge', ['.area', 'stroke'], ['#map', 'background'], GRAPHIC],
  ['the focus ring', ['button:focus', 'outline'], [':root', 'background'], GRAPHIC],
  ['the focus ring in the header bar', ['button:focus', 'outline'], ['.bar', 'background'], GRAPHIC],
  ['the focus ring on the map', ['button:focus', 'outline'], ['#map', 'background'], GRAPHIC],
  ['the scale bar', ['.scale', 'stroke'], ['#map', 'background'], GRAPHIC],
];

const failures = [];
const seen = [];
const check = (what, fg, bg, min) => {
  const r = ratio(fg, bg);
  seen.push(`${r.toFixed(2).padStart(6)}:1  ${what}`);
  if (r < min) failures.push(`${what}: ${r.toFixed(2)}:1 < ${min}:1`);
};
for (const [what, [fs, fp], [bs, bp], min] of PAIRS) check(what, colour(fs, fp), colour(bs, bp), min);
// Every rule that sets both a text colour and a background.
for (const [sel, props] of rules) {
  const fg = hex(props.color);
  const bg = hex(props.background ?? props['background-color']);
  if (fg && bg) check(`${sel} (its own colours)`, fg, bg, TEXT);
}
console.log(seen.join('\n'));
if (failures.length) {
  console.error(`contrast below WCAG AA:\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log(`contrast: ${seen.length} colour pairs meet WCAG AA`);
