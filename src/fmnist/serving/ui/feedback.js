// "Wrong? Pick the right class": send the true class of the prediction on screen to
// POST v1/feedback (or "none of these": an item outside the ten classes) and say what happened.

import { request } from "./api.js";

const NONE = "unknown";

/** The outcome of a feedback POST as [state, message]: 201 saved, 200 already saved, 409 a
 *  different label was saved before (the problem's detail says which). */
function outcome(status) {
  return status === 201
    ? ["saved", "Saved, thank you: this helps measure the model's live accuracy."]
    : ["unchanged", "Already saved."];
}

/** Wire the feedback form inside `root`, with one option per class name; returns
 *  `reset(prediction)` to call when a new prediction is shown. */
export function setupFeedback(root, classNames) {
  const form = root.querySelector("form");
  const select = root.querySelector("select");
  const button = root.querySelector("button");
  const status = root.querySelector("[data-testid='feedback-status']");
  let requestId = null;
  let sending = null;

  select.append(
    ...classNames.map((name, id) => new Option(name, String(id))),
    new Option("None of these (not one of the ten classes)", NONE),
  );

  function say(state, message) {
    root.dataset.state = state;
    status.textContent = message;
  }

  function reset(prediction) {
    sending?.abort();
    sending = null;
    requestId = prediction?.request_id ?? null;
    root.hidden = requestId == null;
    select.value = "";
    button.disabled = true;
    say("idle", "");
  }

  select.addEventListener("change", () => {
    button.disabled = select.value === "" || sending != null;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (requestId == null || select.value === "") return;
    const body =
      select.value === NONE
        ? { request_id: requestId, unknown: true }
        : { request_id: requestId, label: Number(select.value) };
    const controller = new AbortController();
    sending = controller;
    button.disabled = true;
    say("sending", "Sending…");
    try {
      const answer = await request("v1/feedback", {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/json" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (sending === controller) say(...outcome(answer.status));
    } catch (err) {
      if (err.name === "AbortError" || sending !== controller) return;
      const state = err.status === 409 ? "conflict" : "error";
      say(state, `Not saved: ${err.detail || err.title}`);
    } finally {
      if (sending === controller) {
        sending = null;
        button.disabled = select.value === "";
      }
    }
  });

  reset(null);
  return reset;
}
