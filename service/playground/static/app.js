// The playground: a client of the public v1 API (GET /v1/models, POST /v1/sample, /v1/interpolate, /v1/score)
// and of /metrics. It knows nothing a client could not know.

import { $, apiKey, call, el, whenUnauthorized } from "./api.js";
import { setupLive } from "./live.js";
import { setupSample } from "./sample.js";
import { setupScore } from "./score.js";
import { setupWalk } from "./walk.js";

let models = [];
let current = null;

const app = {
  model: () => current,
  // A class-conditional model's chosen class (its index), sent with every sample and keyframe; else undefined.
  label: () => (current && current.conditional ? Number($("label").value) : undefined),
  addKeyframe: (seed) => walk.addKeyframe(seed),
};
const sample = setupSample(app);
const walk = setupWalk(app);
const score = setupScore(app);

const number = (v, digits = 3) => (typeof v === "number" ? v.toFixed(digits) : "—");

function duration(seconds) {
  if (typeof seconds !== "number") return "—";
  if (seconds < 120) return `${seconds.toFixed(0)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function cardFields(m) {
  const t = m.training || {};
  const metrics = t.final_metrics || {};
  const fields = [
    ["name", m.name],
    ["kind", m.kind],
    ["size", m.kind === "image" ? `${m.width}×${m.height}, ${m.channels} channel(s)` : `${m.data_dim}-d points`],
    ["z_dim", m.z_dim],
    ["version", m.version],
    ["loaded", new Date(m.loaded_at).toLocaleString()],
    ["dataset", (t.dataset && t.dataset.name) || "—"],
    ["iterations", t.generator_iterations ?? "—"],
    ["wall time", duration(t.wall_time_s)],
  ];
  if (m.kind === "image") {
    const q = metrics.quality || {};
    fields.push(
      ["FD", number(q.frechet_distance, 1)],
      ["classes", q.classes_total ? `${q.classes_covered} / ${q.classes_total}` : "—"],
      ["precision / recall", `${number(q.precision)} / ${number(q.recall)}`],
    );
  } else {
    fields.push(
      ["modes", metrics.modes_total ? `${metrics.modes_covered} / ${metrics.modes_total}` : "—"],
      ["high-quality share", number(metrics.high_quality_share)],
    );
  }
  return fields;
}

function showClasses(m) {
  const classes = m.conditional ? m.classes || [] : [];
  $("label").replaceChildren(...classes.map((c, i) => el("option", { value: String(i), text: c })));
  $("label-field").hidden = !classes.length;
}

function choose(name) {
  current = models.find((m) => m.name === name);
  $("model").value = name;
  showClasses(current);
  $("card-fields").replaceChildren(
    ...cardFields(current).flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]),
  );
  const seed = Number($("seed").value) || 0;
  sample.modelChanged(current);
  walk.modelChanged(current, seed);
  score.modelChanged(current);
  sample.sample();
}

async function start() {
  let listing;
  try {
    listing = await call("/v1/models");
  } catch (e) {
    if (e.status !== 401) $("sample-error").textContent = e.message;
    return;
  }
  $("key-form").hidden = true;
  models = listing.models;
  $("model").replaceChildren(...models.map((m) => el("option", { value: m.name, text: `${m.name} (${m.kind})` })));
  if (!models.length) {
    $("sample-error").textContent = "this server has no model to serve yet";
    return;
  }
  if ($("seed").value === "") $("seed").value = "0";
  choose(listing.default || models[0].name);
}

// A server with API keys answers 401 until the page has a key it accepts.
whenUnauthorized(() => {
  const form = $("key-form");
  form.hidden = false;
  $("key-status").textContent = apiKey.get() ? "key refused" : "";
  apiKey.clear();
  $("key").focus();
});
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  apiKey.set($("key").value.trim());
  $("key").value = "";
  start();
});
$("model").addEventListener("change", () => choose($("model").value));
$("label").addEventListener("change", () => sample.sample());

setupLive();
start();
