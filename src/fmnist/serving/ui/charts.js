// Small SVG charts for the monitoring page: stacked vertical bars (traffic over time, the
// confidence histogram) and horizontal rows (accuracy intervals, drift p-values). No library:
// each chart is plain SVG with axes, and every mark carries a <title> tooltip.

const SVG_NS = "http://www.w3.org/2000/svg"; // the SVG namespace name, never fetched

/** An SVG element with attributes (null ones left out) and optional text. */
export function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) {
    if (value != null) node.setAttribute(key, String(value));
  }
  if (text != null) node.textContent = text;
  return node;
}

function withTitle(node, text) {
  node.append(el("title", {}, text));
  return node;
}

/** Round tick values from 0 to at least `max`: steps of 1, 2 or 5 × 10^k (whole numbers when
 *  `integer`), about `count` of them. */
export function niceTicks(max, count = 4, integer = true) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  if (integer) step = Math.max(1, Math.round(step));
  const top = Math.ceil(max / step - 1e-9) * step;
  const values = [];
  for (let i = 0; i * step <= top + 1e-9; i += 1) values.push(+(i * step).toPrecision(12));
  return values;
}

function frame(width, height, margin, label) {
  const svg = el("svg", {
    class: "chart-svg",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": label,
  });
  const box = {
    x: margin.left,
    y: margin.top,
    w: width - margin.left - margin.right,
    h: height - margin.top - margin.bottom,
  };
  return { svg, box };
}

function empty(svg, box, message) {
  svg.append(
    el("text", { class: "chart-empty", x: box.x + box.w / 2, y: box.y + box.h / 2 }, message),
  );
  return svg;
}

/**
 * Stacked vertical bars. `bars`: [{ values: [n per series], tooltip }]; `series`: [{ name,
 * cls }] (a CSS class giving the fill); `xTicks`: [{ at: 0..1 along the axis, text }].
 */
export function stackedBars({ bars, series, xTicks, xTitle, yTitle, label, width = 1000 }) {
  const height = 260;
  const { svg, box } = frame(width, height, { top: 12, right: 12, bottom: 48, left: 52 }, label);
  const totals = bars.map((bar) => bar.values.reduce((a, b) => a + b, 0));
  const ticks = niceTicks(Math.max(0, ...totals));
  const top = ticks[ticks.length - 1];
  const y = (v) => box.y + box.h - (v / top) * box.h;

  const grid = el("g", { class: "axis" });
  for (const t of ticks) {
    grid.append(
      el("line", { class: "grid", x1: box.x, x2: box.x + box.w, y1: y(t), y2: y(t) }),
      el("text", { class: "tick y", x: box.x - 6, y: y(t) }, String(t)),
    );
  }
  for (const { at, text } of xTicks) {
    const x = box.x + at * box.w;
    grid.append(
      el("line", { class: "tick-mark", x1: x, x2: x, y1: box.y + box.h, y2: box.y + box.h + 4 }),
      el("text", { class: "tick x", x, y: box.y + box.h + 16 }, text),
    );
  }
  grid.append(
    el("line", { class: "baseline", x1: box.x, x2: box.x + box.w, y1: y(0), y2: y(0) }),
    el("text", { class: "axis-title x", x: box.x + box.w / 2, y: height - 6 }, xTitle),
    el(
      "text",
      { class: "axis-title y", transform: `translate(14 ${box.y + box.h / 2}) rotate(-90)` },
      yTitle,
    ),
  );
  svg.append(grid);
  if (!totals.some((t) => t > 0)) return empty(svg, box, "No predictions in this window");

  const slot = box.w / bars.length;
  const gap = Math.min(4, slot * 0.15);
  const marks = el("g", { class: "marks" });
  bars.forEach((bar, i) => {
    let base = 0;
    bar.values.forEach((value, s) => {
      if (value <= 0) return;
      const rect = el("rect", {
        class: `mark ${series[s].cls}`,
        x: box.x + i * slot + gap / 2,
        y: y(base + value),
        width: Math.max(1, slot - gap),
        height: Math.max(0.5, y(base) - y(base + value)),
      });
      marks.append(withTitle(rect, `${bar.tooltip}\n${series[s].name}: ${value}`));
      base += value;
    });
  });
  svg.append(marks);
  return svg;
}

/**
 * Horizontal rows over a linear scale [0, max]: one row per `rows` entry ({ label, note }),
 * drawn by `draw(row, x, yMid, group)` where `x(v)` maps a value to the SVG x coordinate.
 */
export function rowChart({ rows, max, ticks, xTitle, label, draw, width = 520 }) {
  const rowHeight = 26;
  const side = { left: Math.min(128, width / 3), right: Math.min(118, width / 4) };
  const margin = { top: 8, bottom: 40, ...side };
  const height = margin.top + margin.bottom + rowHeight * Math.max(1, rows.length);
  const { svg, box } = frame(width, height, margin, label);
  const x = (v) => box.x + (Math.max(0, Math.min(max, v)) / max) * box.w;
  const axis = el("g", { class: "axis" });
  for (const { at, text } of ticks) {
    axis.append(
      el("line", { class: "grid", x1: x(at), x2: x(at), y1: box.y, y2: box.y + box.h }),
      el("text", { class: "tick x", x: x(at), y: box.y + box.h + 16 }, text),
    );
  }
  axis.append(el("text", { class: "axis-title x", x: box.x + box.w / 2, y: height - 6 }, xTitle));
  svg.append(axis);
  rows.forEach((row, i) => {
    const mid = box.y + rowHeight * i + rowHeight / 2;
    const group = el("g", { class: `row ${row.cls || ""}`.trim() });
    group.append(
      el("text", { class: "row-label", x: box.x - 8, y: mid }, row.label),
      el("text", { class: "row-note", x: box.x + box.w + 8, y: mid }, row.note || ""),
    );
    draw(row, x, mid, group);
    svg.append(group);
  });
  return svg;
}

/** Accuracy with its interval per row: a whisker from `low` to `high` and a dot at `value`. */
export function intervals({ rows, xTitle, label, width }) {
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((at) => ({ at, text: `${100 * at}%` }));
  return rowChart({
    rows,
    max: 1,
    ticks,
    xTitle,
    label,
    width,
    draw(row, x, mid, group) {
      const whisker = el("g", { class: "whisker" });
      whisker.append(
        el("line", { x1: x(row.low), x2: x(row.high), y1: mid, y2: mid }),
        el("line", { x1: x(row.low), x2: x(row.low), y1: mid - 6, y2: mid + 6 }),
        el("line", { x1: x(row.high), x2: x(row.high), y1: mid - 6, y2: mid + 6 }),
      );
      const dot = el("circle", { class: "mark point", cx: x(row.value), cy: mid, r: 5 });
      group.append(whisker, withTitle(dot, row.tooltip));
    },
  });
}

const pLabel = (k) => (k === 0 ? "1" : k <= 3 ? (10 ** -k).toFixed(k) : `1e-${k}`);

/**
 * Drift tests as bars of −log10(p): longer means stronger evidence of drift; the tick across
 * each bar is the test's own threshold (bars past it fired). Rows: { label, p, threshold, cls }.
 */
export function pValueBars({ rows, label, width = 520 }) {
  const score = (p) => (p == null ? 0 : -Math.log10(Math.max(p, 1e-12)));
  const highest = Math.max(2, ...rows.map((r) => Math.max(score(r.p), score(r.threshold))));
  const max = Math.ceil(highest * 1.1);
  const step = Math.max(1, Math.ceil(max / 5));
  const ticks = [];
  for (let k = 0; k <= max; k += step) ticks.push({ at: k, text: pLabel(k) });
  return rowChart({
    rows,
    max,
    ticks,
    xTitle:
      width < 480
        ? "p-value, log scale (| threshold)"
        : "p-value (log scale): a longer bar is stronger evidence of drift; | threshold",
    label,
    width,
    draw(row, x, mid, group) {
      if (row.p != null) {
        const bar = el("rect", {
          class: "mark bar",
          x: x(0),
          y: mid - 7,
          width: Math.max(1, x(score(row.p)) - x(0)),
          height: 14,
        });
        group.append(withTitle(bar, row.tooltip));
      }
      if (row.threshold != null) {
        const t = x(score(row.threshold));
        group.append(el("line", { class: "threshold", x1: t, x2: t, y1: mid - 10, y2: mid + 10 }));
      }
    },
  });
}
