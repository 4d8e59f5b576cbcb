// The monitoring page: draws GET v1/monitoring/summary as SVG charts (traffic per class over
// time, confidence, live accuracy with intervals, drift per test) and lists firing alerts.

import { api } from "./api.js";
import { intervals, pValueBars, stackedBars } from "./charts.js";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const page = $("monitoring");
const percent = (p, digits = 1) => `${(100 * p).toFixed(digits)}%`;
/** A chart's drawing width: its container's, so text keeps its size on a narrow screen. */
const widthOf = (testid, fallback) => Math.max(300, Math.round($(testid).clientWidth || fallback));
const series = (labels) => labels.map((name, i) => ({ name, cls: `series-${i}` }));

function when(iso, withSeconds = false) {
  const options = { hour: "2-digit", minute: "2-digit", ...(withSeconds && { second: "2-digit" }) };
  return new Date(iso).toLocaleTimeString([], options);
}

function day(iso) {
  return new Date(iso).toLocaleDateString([], { month: "short", day: "numeric" });
}

function legend(target, entries) {
  target.replaceChildren(
    ...entries.map(({ name, cls, note }) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = `swatch ${cls}`;
      item.append(swatch, note == null ? name : `${name} (${note})`);
      return item;
    }),
  );
}

/** Predictions per class, stacked per time bucket (or per group of predictions by count). */
function renderTimeline({ timeline, hours }) {
  const { buckets, labels, mode } = timeline;
  const long = hours > 48;
  const width = widthOf("chart-timeline", 1000);
  const every = Math.max(1, Math.ceil(buckets.length / Math.max(2, Math.floor(width / 120))));
  const xTicks = buckets
    .map((b, i) => ({ i, b }))
    .filter(({ i }) => i % every === 0)
    .map(({ i, b }) =>
      mode === "time"
        ? { at: i / buckets.length, text: long ? day(b.start) : when(b.start) }
        : { at: (i + 0.5) / buckets.length, text: when(b.start, true) },
    )
    .filter((tick, i, all) => i === 0 || tick.text !== all[i - 1].text); // a burst: one label
  const stamp = (iso) => `${long ? `${day(iso)} ` : ""}${when(iso, mode !== "time")}`;
  const totals = labels.map((_, s) => buckets.reduce((sum, b) => sum + b.counts[s], 0));
  const chart = stackedBars({
    bars: buckets.map((b) => ({
      values: b.counts,
      tooltip: `${stamp(b.start)} – ${stamp(b.end)}`,
    })),
    series: series(labels),
    xTicks,
    xTitle: mode === "time" ? "time (local)" : "predictions, oldest to newest, in equal groups",
    yTitle: "predictions",
    label: "Stacked bars: predictions per class over time",
    width,
  });
  $("chart-timeline").replaceChildren(chart);
  const minutes = timeline.bucket_seconds / 60;
  const size = minutes >= 60 ? `${+(minutes / 60).toFixed(2)} h` : `${+minutes.toFixed(1)} min`;
  $("timeline-caption").textContent =
    mode === "time"
      ? `Bars of ${size}, stacked by predicted class.`
      : "Too little traffic spread over time for time buckets: grouped by count instead.";
  legend(
    $("timeline-legend"),
    series(labels).map((s, i) => ({ ...s, note: totals[i] })),
  );
}

/** The confidence histogram, "unknown" answers stacked on top of the others. */
function renderConfidence({ confidence }) {
  const { edges, counts, unknown_counts: unknown } = confidence;
  const bins = counts.length;
  const parts = [
    { name: "answered a class", cls: "series-answered" },
    { name: "answered unknown", cls: "series-10" },
  ];
  const chart = stackedBars({
    bars: counts.map((n, i) => ({
      values: [n - unknown[i], unknown[i]],
      tooltip: `confidence ${edges[i].toFixed(2)} – ${edges[i + 1].toFixed(2)}`,
    })),
    series: parts,
    xTicks: [0, 0.25, 0.5, 0.75, 1].map((at) => ({ at, text: at.toFixed(2) })),
    xTitle: `confidence (${bins} bins)`,
    yTitle: "predictions",
    label: "Histogram of the confidence of the answers",
    width: widthOf("chart-confidence", 520),
  });
  $("chart-confidence").replaceChildren(chart);
  legend($("confidence-legend"), parts);
}

function estimateRow(label, estimate, tooltip) {
  return {
    label,
    value: estimate.accuracy,
    low: estimate.low,
    high: estimate.high,
    note: `${percent(estimate.accuracy, 0)} · n=${estimate.n}`,
    tooltip:
      `${tooltip}: ${estimate.correct}/${estimate.n} correct, ${percent(estimate.accuracy)} ` +
      `(interval ${percent(estimate.low)} – ${percent(estimate.high)})`,
  };
}

/** Live accuracy per model version, then per true class of the most labelled version. */
function renderAccuracy({ live_accuracy: live }) {
  const models = live.models.filter((m) => m.overall);
  const level = percent(live.confidence, 0);
  const caption = $("accuracy-caption");
  if (!models.length) {
    caption.textContent =
      "No labelled predictions in this window yet: pick the right class under a prediction " +
      "on the classifier page, or POST /v1/feedback.";
    $("chart-accuracy").replaceChildren();
    $("chart-accuracy-classes").replaceChildren();
    return;
  }
  const names = new Set(models.map((m) => m.model_name));
  const full = (m) => `${m.model_name} v${m.model_version}`;
  const tag = (m) => (names.size > 1 ? full(m) : `v${m.model_version}`);
  caption.textContent =
    `${live.labelled} labelled predictions` +
    (live.out_of_scope ? ` (and ${live.out_of_scope} marked as none of the classes)` : "") +
    ` of ${[...names].join(", ")}; whiskers: ${level} Wilson intervals.`;
  const rows = models.map((m) => estimateRow(tag(m), m.overall, full(m)));
  $("chart-accuracy").replaceChildren(
    intervals({
      rows,
      xTitle: "accuracy per model version",
      label: "Accuracy per model version",
      width: widthOf("chart-accuracy", 520),
    }),
  );
  const most = models.reduce((a, b) => (b.overall.n > a.overall.n ? b : a));
  const classRows = Object.entries(most.per_class).map(([name, e]) => estimateRow(name, e, name));
  $("chart-accuracy-classes").replaceChildren(
    intervals({
      rows: classRows,
      xTitle: `accuracy per true class, ${tag(most)}`,
      label: `Accuracy per true class of ${tag(most)}`,
      width: widthOf("chart-accuracy-classes", 520),
    }),
  );
}

const formatP = (p) => (p == null ? "–" : p < 1e-3 ? p.toExponential(1) : p.toFixed(3));

/** The latest drift verdict and each test's p-value against its threshold. */
function renderDrift({ drift }) {
  const status = $("drift-status");
  status.dataset.status = drift.status;
  const caption = $("drift-caption");
  const link = $("drift-report-link");
  link.hidden = !drift.has_report;
  if (drift.status === "not_checked") {
    status.textContent = "Not checked yet";
    caption.textContent =
      "Run `fmnist monitor drift` (or `fmnist monitor run`) to compare recent traffic with " +
      "the model's reference.";
    $("chart-drift").replaceChildren();
    return;
  }
  status.textContent = drift.status === "drift_detected" ? "Drift detected" : "No drift";
  const checked = new Date(drift.checked_at);
  caption.textContent =
    `Checked ${checked.toLocaleString()} on ${drift.window_size} predictions against ` +
    `${drift.reference_model} v${drift.reference_version}; alpha ${drift.alpha}, ` +
    `${drift.correction}.`;
  const rows = drift.tests.map((t) => ({
    label: t.name,
    p: t.p_value,
    threshold: t.threshold,
    cls: t.fired ? "fired" : t.in_verdict ? "held" : "info",
    note: t.p_value == null ? "not run" : `p ${formatP(t.p_value)}${t.fired ? " · fired" : ""}`,
    tooltip:
      `${t.name}: statistic ${t.statistic == null ? "–" : t.statistic.toPrecision(3)}, ` +
      `p ${formatP(t.p_value)}, threshold ${formatP(t.threshold)}` +
      (t.in_verdict ? (t.fired ? " (fired)" : "") : " (informational)"),
  }));
  const width = widthOf("chart-drift", 520);
  $("chart-drift").replaceChildren(pValueBars({ rows, label: "Drift tests: p-values", width }));
}

/** The running A/B, shadow or canary experiment: accuracy per arm with intervals, decision. */
function renderExperiment({ experiment }) {
  const caption = $("experiment-caption");
  const decision = $("experiment-decision");
  if (!experiment) {
    caption.textContent = "No experiment running (PUT v1/admin/rollout starts one).";
    $("chart-experiment").replaceChildren();
    decision.textContent = "";
    decision.dataset.decision = "";
    return;
  }
  const { readout } = experiment;
  const model = experiment.challenger_model;
  const arms = readout.arms
    .map((a) => `${a.arm}: ${a.requests} requests, ${a.labelled} labelled` +
      (a.latency_p95_ms == null ? "" : `, p95 ${a.latency_p95_ms.toFixed(2)} ms`) +
      (a.unknown_rate == null ? "" : `, unknown ${percent(a.unknown_rate)}`))
    .join("; ");
  caption.textContent =
    `${experiment.mode} "${experiment.experiment}": challenger ${experiment.challenger}` +
    (model ? ` (${model.name} v${model.version})` : "") +
    (experiment.mode === "shadow" ? "" : `, ${percent(experiment.share, 0)} of clients`) +
    ` since ${when(experiment.since, true)}. ${arms}.`;
  const rows = readout.arms
    .filter((a) => a.labelled > 0)
    .map((a) => estimateRow(a.arm, {
      accuracy: a.accuracy, low: a.accuracy_low, high: a.accuracy_high, n: a.labelled,
      correct: a.correct,
    }, a.arm));
  $("chart-experiment").replaceChildren(
    ...(rows.length
      ? [intervals({
        rows,
        xTitle: "accuracy per arm (labelled traffic)",
        label: "Accuracy per arm",
        width: widthOf("chart-experiment", 520),
      })]
      : []),
  );
  decision.dataset.decision = readout.decision || "";
  decision.textContent = readout.decision
    ? `Decision: ${readout.decision} (difference ${(100 * readout.difference).toFixed(2)} ` +
      `points, always-valid p ${formatP(readout.p_value_always_valid)}; ` +
      `${readout.planned_n_per_arm.toLocaleString()} labelled per arm planned).`
    : "No decision yet: both arms need labelled predictions.";
}

function renderAlerts({ alerts }) {
  const list = $("alerts");
  if (!alerts.length) {
    const item = document.createElement("li");
    item.className = "muted";
    item.dataset.testid = "alerts-none";
    item.textContent = "No alerts firing.";
    list.replaceChildren(item);
    return;
  }
  list.replaceChildren(
    ...alerts.map((alert) => {
      const item = document.createElement("li");
      item.dataset.testid = "alert";
      item.dataset.name = alert.name;
      const badge = document.createElement("span");
      badge.className = `severity severity-${alert.severity}`;
      badge.textContent = alert.severity;
      const name = document.createElement("strong");
      name.textContent = alert.name;
      const detail = document.createElement("span");
      detail.className = "muted";
      detail.textContent = ` since ${new Date(alert.since).toLocaleString()}: ${alert.summary}`;
      item.append(badge, name, detail);
      return item;
    }),
  );
}

function renderTiles(summary) {
  const rate = summary.unknown_rate.rate;
  $("tile-predictions").textContent = summary.predictions.toLocaleString();
  $("tile-unknown").textContent = rate == null ? "–" : percent(rate);
  $("tile-labelled").textContent = summary.live_accuracy.labelled.toLocaleString();
  const drift = { not_checked: "not checked", no_drift: "none", drift_detected: "detected" };
  $("tile-drift").textContent = drift[summary.drift.status];
  $("tile-drift").dataset.status = summary.drift.status;
  $("tile-alerts").textContent = String(summary.alerts.length);
}

function renderCharts(summary) {
  renderTimeline(summary);
  renderConfidence(summary);
  renderAccuracy(summary);
  renderDrift(summary);
  renderExperiment(summary);
}

let loading = null;
let shown = null; // the summary on screen, redrawn at the new width when the window resizes
let resizing = null;

async function load() {
  loading?.abort();
  const controller = new AbortController();
  loading = controller;
  page.setAttribute("aria-busy", "true");
  const hours = $("window-hours").value;
  try {
    const summary = await api(`v1/monitoring/summary?hours=${encodeURIComponent(hours)}`, {
      signal: controller.signal,
    });
    if (loading !== controller) return;
    $("monitoring-error").hidden = true;
    shown = summary;
    renderTiles(summary);
    renderCharts(summary);
    renderAlerts(summary);
    $("updated").textContent = `Updated ${new Date(summary.generated_at).toLocaleTimeString()}`;
    page.dataset.state = "ready";
  } catch (err) {
    if (err.name === "AbortError" || loading !== controller) return;
    $("monitoring-error-title").textContent = err.title || "The summary could not be loaded";
    $("monitoring-error-detail").textContent = err.detail || "";
    $("monitoring-error").hidden = false;
    page.dataset.state = "error";
  } finally {
    if (loading === controller) {
      loading = null;
      page.setAttribute("aria-busy", "false");
    }
  }
}

$("refresh").addEventListener("click", load);
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => shown && renderCharts(shown), 150);
});
$("window-hours").addEventListener("change", load);
load();
