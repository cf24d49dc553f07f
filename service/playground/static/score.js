// The score panel: dropped or chosen files -> POST /v1/score (multipart) -> critic score and percentile per file.
// All files of one drop go in one request; an error that names an image (details.index) is shown next to that
// file and the others are sent again; any other error is shown next to every file it concerned.

import { $, call, el } from "./api.js";

export function setupScore(app) {
  const list = $("scores");
  const drop = $("drop");
  const input = $("files");

  function row(file) {
    const thumb = el("img", { src: URL.createObjectURL(file), alt: `upload ${file.name}`, class: "thumb" });
    thumb.addEventListener("error", () => thumb.classList.add("broken"), { once: true });
    const result = el("span", { class: "result", text: "scoring…", role: "status" });
    const item = el("li", { class: "score-row" }, thumb, el("span", { class: "name", text: file.name }), result);
    list.prepend(item);
    return { file, item, result };
  }

  function showScore(entry, { critic, percentile, label }) {
    const fill = el("span", { class: "fill" });
    fill.style.width = `${percentile.toFixed(1)}%`; // through the CSSOM: the policy refuses style attributes
    const bar = el("span", {
      class: "bar",
      role: "meter",
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": percentile.toFixed(1),
      "aria-label": `percentile of ${entry.file.name} among real images`,
    });
    bar.append(fill);
    entry.result.replaceChildren(
      bar,
      el("span", {
        class: "figure",
        // A conditional model's score is against the class the critic rates highest: named here.
        text: `percentile ${percentile.toFixed(1)} · critic ${critic.toFixed(3)}${label ? ` · class ${label}` : ""}`,
      }),
    );
    entry.item.classList.remove("failed");
  }

  function showError(entry, error) {
    entry.item.classList.add("failed");
    const message = el("span", { class: "error", role: "alert", text: error.message });
    entry.result.replaceChildren(message);
    if (error.code === "wrong_image_size") {
      const model = app.model();
      const fit = el("button", { type: "button", text: `fit to ${model.width}×${model.height}` });
      fit.addEventListener("click", () => score([entry], "fit"));
      entry.result.append(fit);
    }
  }

  async function score(entries, resize = "error") {
    let pending = entries;
    while (pending.length) {
      const form = new FormData();
      form.append("model", app.model().name);
      form.append("resize", resize);
      for (const entry of pending) {
        entry.result.textContent = "scoring…";
        form.append("file", entry.file, entry.file.name);
      }
      try {
        const answer = await call("/v1/score", { body: form });
        answer.scores.forEach((s, i) => showScore(pending[i], s));
        return;
      } catch (error) {
        const index = error.details && error.details.index;
        if (!Number.isInteger(index) || !pending[index]) {
          pending.forEach((entry) => showError(entry, error));
          return;
        }
        showError(pending[index], error);
        pending = pending.filter((_, i) => i !== index);
      }
    }
  }

  function take(files) {
    const entries = [...files].map(row);
    if (entries.length) score(entries);
  }

  input.addEventListener("change", () => {
    take(input.files);
    input.value = "";
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    take(event.dataTransfer.files);
  });
  // A file dropped outside the zone would make the browser leave the page for it.
  for (const type of ["dragover", "drop"]) document.addEventListener(type, (event) => event.preventDefault());

  return {
    modelChanged(model) {
      const images = model.kind === "image";
      drop.hidden = !images;
      $("score-note").textContent = images
        ? `${model.width}×${model.height}, ${model.channels === 1 ? "grey" : "colour"}; other sizes can be fitted`
        : "this model scores points, not images: POST /v1/score with JSON points";
    },
  };
}
