// The fmnist web UI: upload a photo or pick a Fashion-MNIST test image, show the answer.
// Plain ES modules, no dependencies. API paths are relative so the UI works behind a prefix.

import { api } from "./api.js";
import { setupFeedback } from "./feedback.js";

/** Fashion-MNIST class names by class id (same order as fmnist.CLASS_NAMES). */
export const CLASS_NAMES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

const SAMPLE_COUNT = 12;
const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const ui = {
  input: $("upload-input"),
  dropZone: $("drop-zone"),
  samples: $("samples"),
  shuffle: $("shuffle-samples"),
  result: $("result"),
  placeholder: $("placeholder"),
  busy: $("busy"),
  error: $("error"),
  errorTitle: $("error-title"),
  errorDetail: $("error-detail"),
  answer: $("answer"),
  original: $("original-image"),
  modelInput: $("model-input"),
  label: $("result-label"),
  confidence: $("result-confidence"),
  truth: $("result-truth"),
  path: $("result-path"),
  unknown: $("verdict-unknown"),
  reasons: $("unknown-reasons"),
  top3: $("top3"),
  requestId: $("request-id"),
  modelVersion: $("model-version"),
};

let originalUrl = null;
let lastInput = null; // { blob, filename, payload } of the prediction on screen
let explaining = null; // AbortController of the explanation in flight
let pending = null; // AbortController of the request in flight

const percent = (p) => `${(100 * p).toFixed(1)}%`;

function show(state) {
  ui.result.dataset.state = state;
  ui.placeholder.hidden = state !== "empty";
  ui.busy.hidden = state !== "busy";
  ui.error.hidden = state !== "error";
  ui.answer.hidden = state !== "answer";
  ui.result.setAttribute("aria-busy", String(state === "busy"));
}

function showError(err) {
  ui.errorTitle.textContent = err.title || "Something went wrong";
  ui.errorDetail.textContent = err.detail || "";
  ui.errorDetail.hidden = !err.detail;
  show("error");
}

function setModelVersion(name, version) {
  ui.modelVersion.dataset.version = version == null ? "" : String(version);
  ui.modelVersion.textContent = version == null ? "no model loaded" : `${name} v${version}`;
  ui.modelVersion.classList.toggle("is-missing", version == null);
  const card = $("link-model-card");
  card.hidden = version == null;
  if (version != null) {
    card.href = `v1/models/${encodeURIComponent(name)}/${encodeURIComponent(version)}/card`;
  }
}

function renderTop3(probabilities) {
  const ranked = probabilities
    .map((p, id) => ({ id, p }))
    .sort((a, b) => b.p - a.p)
    .slice(0, 3);
  ui.top3.replaceChildren(
    ...ranked.map(({ id, p }, rank) => {
      const item = document.createElement("li");
      item.className = rank === 0 ? "top3-item is-top" : "top3-item";
      item.dataset.testid = "top3-item";
      item.dataset.classId = String(id);
      item.dataset.probability = String(p);
      const name = document.createElement("span");
      name.className = "top3-name";
      name.dataset.testid = "top3-name";
      name.textContent = CLASS_NAMES[id] ?? `class ${id}`;
      const value = document.createElement("span");
      value.className = "top3-value";
      value.dataset.testid = "top3-percent";
      value.textContent = percent(p);
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.setAttribute("aria-hidden", "true");
      const fill = document.createElement("span");
      fill.style.width = `${Math.max(0, Math.min(100, 100 * p))}%`;
      bar.append(fill);
      item.append(name, value, bar);
      return item;
    }),
  );
}

/** Which path (photo or Fashion-MNIST) and which model version answered. */
function renderPath(payload, prediction) {
  const path = prediction.path ?? payload.path ?? "";
  const name = prediction.model_name ?? payload.model_name;
  const version = prediction.model_version ?? payload.model_version;
  const kind = path === "photo" ? "Photo path" : "Fashion-MNIST path";
  const fallback = payload.fallback ? ` (${payload.fallback})` : "";
  ui.path.dataset.path = path;
  ui.path.textContent = `${kind} · answered by ${name} v${version}${fallback}`;
}

function renderPrediction(payload, truth) {
  const prediction = payload.predictions[0];
  const isUnknown = prediction.label === "unknown" || prediction.class_id == null;
  ui.label.textContent = isUnknown ? "Unknown" : prediction.label;
  ui.label.dataset.label = prediction.label;
  ui.label.classList.toggle("is-unknown", isUnknown);
  const confidence = prediction.confidence;
  ui.confidence.textContent = isUnknown
    ? `Closest class: ${prediction.top_label ?? "?"}${confidence == null ? "" : ` (${percent(confidence)})`}`
    : `${percent(confidence)} confident`;

  ui.truth.hidden = truth == null;
  if (truth != null) {
    const hit = !isUnknown && prediction.label === truth;
    ui.truth.textContent = `True label: ${truth} ${hit ? "✓" : "✗"}`;
    ui.truth.classList.toggle("is-hit", hit);
  }

  renderPath(payload, prediction);

  ui.unknown.hidden = !isUnknown;
  ui.reasons.replaceChildren(
    ...(prediction.reasons || []).map((reason) => {
      const li = document.createElement("li");
      li.textContent = reason;
      return li;
    }),
  );

  ui.original.src = originalUrl || "";
  ui.original.classList.toggle("pixelated", truth != null); // test images are 28x28 too
  if (prediction.model_input_png) {
    ui.modelInput.src = `data:image/png;base64,${prediction.model_input_png}`;
  } else {
    ui.modelInput.removeAttribute("src");
  }
  renderTop3(prediction.probabilities);
  ui.requestId.textContent = `Request ${payload.request_id}`;
  resetFeedback(prediction);
  setModelVersion(payload.model_name, payload.model_version);
  show("answer");
}

function select(button) {
  for (const other of ui.samples.querySelectorAll(".sample")) {
    const selected = other === button;
    other.classList.toggle("is-selected", selected);
    other.setAttribute("aria-pressed", String(selected));
  }
}

/** Send one image (a File or Blob) to the predict route and show the answer. */
async function classify(blob, filename, truth = null) {
  if (truth == null) select(null);
  pending?.abort();
  const controller = new AbortController();
  pending = controller;
  if (originalUrl) URL.revokeObjectURL(originalUrl);
  originalUrl = URL.createObjectURL(blob);
  show("busy");
  const form = new FormData();
  form.append("file", blob, filename);
  try {
    const payload = await api("v1/predict?return_image=true", {
      method: "POST",
      body: form,
      signal: controller.signal,
    });
    if (pending === controller) {
      lastInput = { blob, filename, payload };
      resetExplanation();
      renderPrediction(payload, truth);
    }
  } catch (err) {
    if (err.name !== "AbortError" && pending === controller) showError(err);
  } finally {
    if (pending === controller) pending = null;
  }
}

function base64ToBlob(b64, type) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type });
}

async function loadSamples(seed) {
  ui.samples.setAttribute("aria-busy", "true");
  try {
    const { samples } = await api(`v1/samples?n=${SAMPLE_COUNT}&seed=${seed}`);
    ui.samples.replaceChildren(
      ...samples.map((sample) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "sample";
        button.dataset.testid = "sample";
        button.dataset.label = sample.label;
        button.setAttribute("aria-pressed", "false");
        button.setAttribute("aria-label", `Test image ${sample.index}: ${sample.label}`);
        button.title = `#${sample.index} · ${sample.label}`;
        const img = document.createElement("img");
        img.className = "pixelated";
        img.alt = "";
        img.width = 28;
        img.height = 28;
        img.src = `data:image/png;base64,${sample.png_b64}`;
        const caption = document.createElement("span");
        caption.textContent = sample.label;
        button.append(img, caption);
        button.addEventListener("click", () => {
          select(button);
          const blob = base64ToBlob(sample.png_b64, "image/png");
          classify(blob, `fashion-mnist-test-${sample.index}.png`, sample.label);
        });
        return button;
      }),
    );
  } catch (err) {
    const note = document.createElement("p");
    note.className = "muted";
    note.dataset.testid = "samples-error";
    note.textContent = `Test images are unavailable: ${err.detail || err.title}`;
    ui.samples.replaceChildren(note);
  } finally {
    ui.samples.removeAttribute("aria-busy");
  }
}

async function loadModel() {
  try {
    const models = await api("v1/models");
    const served = models.served;
    setModelVersion(served?.name ?? models.registered_model, served?.version ?? null);
  } catch (err) {
    ui.modelVersion.textContent = "model unavailable";
    ui.modelVersion.title = err.detail || err.title;
    ui.modelVersion.classList.add("is-missing");
  }
}

function firstImage(files) {
  return [...(files || [])].find((f) => f.type.startsWith("image/")) || files?.[0] || null;
}

function wireInputs() {
  ui.input.addEventListener("change", () => {
    const file = ui.input.files?.[0];
    if (file) classify(file, file.name);
    ui.input.value = ""; // choosing the same file again fires "change" again
  });

  for (const type of ["dragenter", "dragover"]) {
    ui.dropZone.addEventListener(type, (event) => {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      ui.dropZone.classList.add("is-over");
    });
  }
  for (const type of ["dragleave", "dragend"]) {
    ui.dropZone.addEventListener(type, () => ui.dropZone.classList.remove("is-over"));
  }
  ui.dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    ui.dropZone.classList.remove("is-over");
    const file = firstImage(event.dataTransfer.files);
    if (file) classify(file, file.name || "dropped-image");
  });
  // A file dropped next to the zone must not make the browser navigate away from the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  document.addEventListener("paste", (event) => {
    const file = firstImage(event.clipboardData?.files);
    if (file) classify(file, file.name || "pasted-image");
  });

  ui.shuffle.addEventListener("click", () => loadSamples(Math.floor(Math.random() * 2 ** 31)));
}

// ---- "Why?": POST the same input to v1/explain and show the heatmap next to the prediction.

const explainUi = {
  button: $("explain-button"),
  method: $("explain-method"),
  status: $("explain-status"),
  figure: $("explain-figure"),
  heatmap: $("explain-heatmap"),
  caption: $("explain-caption"),
};

function resetExplanation() {
  explaining?.abort();
  explaining = null;
  explainUi.figure.hidden = true;
  explainUi.figure.parentElement.classList.remove("is-explained");
  explainUi.heatmap.removeAttribute("src");
  explainUi.status.textContent = "";
  explainUi.button.disabled = false;
}

/** Explain the input on screen with the chosen method, for the model that answered it. */
async function explainCurrent() {
  if (!lastInput) return;
  const { blob, filename, payload } = lastInput;
  const method = explainUi.method.value;
  const label = explainUi.method.selectedOptions[0]?.textContent || method;
  resetExplanation();
  const controller = new AbortController();
  explaining = controller;
  explainUi.button.disabled = true;
  explainUi.status.textContent = `Explaining with ${label}…`;
  const form = new FormData();
  form.append("file", blob, filename);
  const query = new URLSearchParams({ method });
  const name = payload.predictions[0]?.model_name ?? payload.model_name;
  const version = payload.predictions[0]?.model_version ?? payload.model_version;
  if (name != null && version != null) query.set("model", `${name}@${version}`);
  try {
    const answer = await api(`v1/explain?${query}`, {
      method: "POST",
      body: form,
      signal: controller.signal,
    });
    if (explaining !== controller) return;
    const item = answer.explanations[0];
    explainUi.heatmap.src = `data:image/png;base64,${item.heatmap_png}`;
    explainUi.heatmap.dataset.classId = String(item.class_id);
    explainUi.heatmap.dataset.method = answer.method;
    explainUi.caption.textContent = `Why “${item.label}”`;
    explainUi.figure.hidden = false;
    explainUi.figure.parentElement.classList.add("is-explained");
    explainUi.status.textContent =
      `${label}: red pixels pushed the model towards ${item.label}, blue ones away ` +
      `from it (${(1000 * answer.seconds).toFixed(0)} ms).`;
  } catch (err) {
    if (err.name !== "AbortError" && explaining === controller) {
      explainUi.status.textContent = `No explanation: ${err.detail || err.title}`;
    }
  } finally {
    if (explaining === controller) {
      explaining = null;
      explainUi.button.disabled = false;
    }
  }
}

function wireExplain() {
  explainUi.button.addEventListener("click", explainCurrent);
  explainUi.method.addEventListener("change", () => {
    if (!explainUi.figure.hidden) explainCurrent();
  });
}

const resetFeedback = setupFeedback($("feedback"), CLASS_NAMES);
$("class-list").textContent = CLASS_NAMES.join(", ");
wireInputs();
wireExplain();
show("empty");
loadModel();
loadSamples(0);
