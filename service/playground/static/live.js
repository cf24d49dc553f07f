// The live panel: GET /metrics every few seconds, turned into requests/s, mean batch size and queue depth.

import { $, el } from "./api.js";
import { sparkline } from "./plot.js";

const EVERY_MS = 2000;
const KEEP = 30;

// Prometheus text -> {name: [{labels, value}]} for the few series the panel reads.
function parse(text) {
  const series = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...(match[2] || "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    (series[match[1]] ||= []).push({ labels, value: Number(match[3]) });
  }
  return series;
}

const total = (series, name, keep = () => true) =>
  (series[name] || []).filter((s) => keep(s.labels)).reduce((sum, s) => sum + s.value, 0);

export function setupLive() {
  const fields = $("live-fields");
  const rows = {
    rate: { label: "requests/s (v1)", values: [] },
    batch: { label: "mean batch size", values: [] },
    queue: { label: "queue depth", values: [] },
  };
  const nodes = {};
  for (const [name, row] of Object.entries(rows)) {
    nodes[name] = { value: el("dd", { id: `live-${name}`, text: "…" }), spark: el("dd", { class: "spark-cell" }) };
    fields.append(el("dt", { text: row.label }), nodes[name].value, nodes[name].spark);
  }
  let last = null;

  function push(name, value, digits) {
    const row = rows[name];
    row.values.push(value);
    if (row.values.length > KEEP) row.values.shift();
    nodes[name].value.textContent = value.toFixed(digits);
    nodes[name].spark.replaceChildren(sparkline(row.values, `${row.label}, last ${row.values.length} readings`));
  }

  async function poll() {
    try {
      const response = await fetch("/metrics");
      if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
      const series = parse(await response.text());
      const now = {
        at: performance.now(),
        requests: total(series, "wgan_requests_total", (l) => l.endpoint.startsWith("/v1/")),
        batchSum: total(series, "wgan_batch_size_sum"),
        batchCount: total(series, "wgan_batch_size_count"),
      };
      if (last) {
        const seconds = (now.at - last.at) / 1000;
        const passes = now.batchCount - last.batchCount;
        push("rate", (now.requests - last.requests) / seconds, 1);
        push("batch", passes > 0 ? (now.batchSum - last.batchSum) / passes : 0, 1);
      }
      push("queue", total(series, "wgan_queue_depth"), 0);
      last = now;
    } catch (e) {
      nodes.rate.value.textContent = e.message;
    }
  }

  poll();
  setInterval(poll, EVERY_MS);
}
