// The latent walk: keyframe seeds -> POST /v1/interpolate (JSON frames) played as an animation, scrubbed frame by
// frame; "export GIF" asks the same endpoint for format gif.

import { $, call, download, el, numberOf } from "./api.js";
import { path } from "./plot.js";

const FRAME_MS = 100;

export function setupWalk(app) {
  const list = $("keyframes");
  const error = $("walk-error");
  const player = $("player");
  const frameImg = $("frame");
  const plot = $("walk-plot");
  const scrub = $("scrub");
  const info = $("frame-info");
  const play = $("play");
  let frames = [];
  let mark = () => {};
  let timer = null;

  function renumber() {
    [...list.children].forEach((item, i) => {
      item.querySelector("input").setAttribute("aria-label", `keyframe ${i + 1} seed`);
      item.querySelector("button").setAttribute("aria-label", `remove keyframe ${i + 1}`);
      item.querySelector("button").disabled = list.children.length <= 2;
    });
  }

  function addKeyframe(seed) {
    const input = el("input", { type: "number", min: "0", step: "1", value: seed, class: "key-seed" });
    const remove = el("button", { type: "button", text: "remove" });
    const item = el("li", {}, input, remove);
    remove.addEventListener("click", () => {
      item.remove();
      renumber();
    });
    list.append(item);
    renumber();
  }

  function request(format) {
    const label = app.label(); // a conditional model: every keyframe of the chosen class
    const points = [...list.querySelectorAll("input")].map((input) =>
      label === undefined ? { seed: numberOf(input) } : { seed: numberOf(input), label },
    );
    const body = { model: app.model().name, points, steps: numberOf($("steps")), method: $("method").value };
    const t = numberOf($("truncation"));
    if (t !== undefined) body.truncation = t;
    if (format) body.format = format;
    return body;
  }

  function show(i) {
    const frame = frames[i];
    if (!frame) return;
    scrub.value = i;
    if (frame.data) frameImg.src = "data:image/png;base64," + frame.data;
    else mark(i);
    frameImg.alt = `walk frame ${i + 1} of ${frames.length}: segment ${frame.segment}, t ${frame.t.toFixed(2)}`;
    info.value = `${i + 1} / ${frames.length} · segment ${frame.segment} · t ${frame.t.toFixed(2)}`;
  }

  function pause() {
    clearInterval(timer);
    timer = null;
    play.textContent = "play";
    play.setAttribute("aria-pressed", "false");
  }

  function start() {
    if (!frames.length) return;
    timer = setInterval(() => show((Number(scrub.value) + 1) % frames.length), FRAME_MS);
    play.textContent = "pause";
    play.setAttribute("aria-pressed", "true");
  }

  async function walk() {
    pause();
    error.textContent = "";
    try {
      const answer = await call("/v1/interpolate", { body: request() });
      frames = answer.frames;
      scrub.max = frames.length - 1;
      const points = frames[0].point !== undefined && frames[0].point !== null;
      frameImg.hidden = points;
      plot.hidden = !points;
      if (points) {
        const drawn = path(frames);
        plot.replaceChildren(drawn.root);
        mark = drawn.mark;
      }
      player.hidden = false;
      show(0);
      start();
    } catch (e) {
      error.textContent = e.message;
    }
  }

  $("walk-form").addEventListener("submit", (event) => {
    event.preventDefault();
    walk();
  });
  $("add-key").addEventListener("click", () => {
    const inputs = list.querySelectorAll("input");
    addKeyframe(inputs.length ? (numberOf(inputs[inputs.length - 1]) ?? 0) + 1 : 0);
  });
  play.addEventListener("click", () => (timer ? pause() : start()));
  scrub.addEventListener("input", () => {
    pause();
    show(Number(scrub.value));
  });
  $("gif-link").addEventListener("click", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      download(await call("/v1/interpolate", { body: request("gif"), as: "blob" }), `${app.model().name}-walk.gif`);
    } catch (e) {
      error.textContent = e.message;
    }
  });

  return {
    addKeyframe(seed) {
      addKeyframe(seed);
      list.lastElementChild.querySelector("input").focus({ preventScroll: true });
    },
    modelChanged(model, seed) {
      pause();
      frames = [];
      player.hidden = true;
      $("gif-link").hidden = model.kind !== "image";
      if (!list.children.length) {
        addKeyframe(seed);
        addKeyframe(seed + 1);
      }
    },
    walk,
  };
}
