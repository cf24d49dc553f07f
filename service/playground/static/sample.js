// The sample panel: POST /v1/sample as JSON (images or points), and as one grid PNG for the download link.

import { $, call, download, el, numberOf } from "./api.js";
import { scatter } from "./plot.js";

const SEED_RANGE = 2 ** 31; // shuffle draws below this: exact in JavaScript numbers, and easy to type back

export function setupSample(app) {
  const seed = $("seed");
  const count = $("count");
  const truncation = $("truncation");
  const status = $("sample-status");
  const error = $("sample-error");
  const grid = $("grid");
  const plot = $("scatter");
  let asked = 0; // a newer request wins over an older one still in flight

  function request() {
    const body = { model: app.model().name, n: numberOf(count) };
    const s = numberOf(seed);
    const t = numberOf(truncation);
    const label = app.label();
    if (label !== undefined) body.label = label;
    if (s !== undefined) body.seed = s;
    if (t !== undefined) body.truncation = t;
    return body;
  }

  async function showImages(images) {
    const tiles = images.map(({ seed: s, data }) => {
      const img = el("img", { src: "data:image/png;base64," + data, alt: `sample, seed ${s}`, "data-seed": s });
      const name = `seed ${s}: add to the walk`;
      const button = el("button", { type: "button", class: "tile", title: name, "aria-label": name }, img);
      button.addEventListener("click", () => app.addKeyframe(s));
      return el("figure", {}, button, el("figcaption", { text: `seed ${s}` }));
    });
    grid.replaceChildren(...tiles);
    await Promise.all(tiles.map((t) => t.querySelector("img").decode().catch(() => {})));
  }

  async function sample() {
    const mine = ++asked;
    const body = request();
    error.textContent = "";
    status.textContent = "sampling…";
    try {
      const started = performance.now();
      const answer = await call("/v1/sample", { body });
      if (mine !== asked) return;
      const items = answer.images || answer.points;
      if (seed.value.trim() === "" && items.length) seed.value = items[0].seed;
      if (answer.points) {
        grid.replaceChildren();
        plot.replaceChildren(scatter(answer.points));
        plot.hidden = false;
      } else {
        plot.hidden = true;
        await showImages(answer.images);
      }
      const ms = Math.round(performance.now() - started);
      status.textContent = `${items.length} from seed ${items[0].seed} in ${ms} ms (model version ${answer.version})`;
      if (!performance.getEntriesByName("first-grid").length) performance.mark("first-grid");
    } catch (e) {
      if (mine !== asked) return;
      status.textContent = "";
      error.textContent = e.message;
    }
  }

  $("sample-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sample();
  });
  $("shuffle").addEventListener("click", () => {
    seed.value = Math.floor(Math.random() * SEED_RANGE);
    sample();
  });
  $("grid-link").addEventListener("click", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const body = { ...request(), grid: true };
      download(await call("/v1/sample", { body, as: "blob" }), `${body.model}-seed-${body.seed ?? "drawn"}.png`);
    } catch (e) {
      error.textContent = e.message;
    }
  });

  return {
    sample,
    modelChanged(model) {
      $("grid-link").hidden = model.kind !== "image";
      grid.replaceChildren();
      plot.hidden = true;
    },
  };
}
