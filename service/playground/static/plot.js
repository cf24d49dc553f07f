// SVG drawings for point models (scatter, walk path) and the live panel's sparklines.

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

// A square view of 2-D points: the same scale on both axes, centred, with a margin.
function frameOf(points) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const [x, y] of points) {
    lo = Math.min(lo, x, y);
    hi = Math.max(hi, x, y);
  }
  const reach = Math.max(Math.abs(lo), Math.abs(hi), 1e-6) * 1.1;
  return { reach, at: (v) => (v / reach) * 100 };
}

function plane(label, reach) {
  const root = svg("svg", { viewBox: "-100 -100 200 200", role: "img", "aria-label": label, class: "plane" });
  root.append(
    svg("line", { x1: -100, y1: 0, x2: 100, y2: 0, class: "axis" }),
    svg("line", { x1: 0, y1: -100, x2: 0, y2: 100, class: "axis" }),
  );
  const note = svg("text", { x: 96, y: -88, class: "tick", "text-anchor": "end" });
  note.textContent = `±${reach.toFixed(2)}`;
  root.append(note);
  return root;
}

// points: [{seed, point: [x, y, ...]}]; only the first two coordinates are drawn.
export function scatter(points) {
  const xy = points.map((p) => p.point);
  const { reach, at } = frameOf(xy);
  const root = plane(`scatter plot of ${points.length} samples`, reach);
  for (const p of points) {
    const dot = svg("circle", { cx: at(p.point[0]), cy: -at(p.point[1]), r: 2.5, class: "dot" });
    const title = svg("title");
    title.textContent = `seed ${p.seed}: (${p.point.map((v) => v.toFixed(3)).join(", ")})`;
    dot.append(title);
    root.append(dot);
  }
  return root;
}

// A walk through the plane; returns {root, mark(i)} to move the marker to frame i.
export function path(frames) {
  const xy = frames.map((f) => f.point);
  const { reach, at } = frameOf(xy);
  const root = plane(`path of a latent walk through ${frames.length} frames`, reach);
  const coords = xy.map(([x, y]) => `${at(x)},${-at(y)}`).join(" ");
  root.append(svg("polyline", { points: coords, class: "route" }));
  for (const [x, y] of [xy[0], xy[xy.length - 1]]) root.append(svg("circle", { cx: at(x), cy: -at(y), r: 3, class: "end" }));
  const marker = svg("circle", { r: 4.5, class: "marker" });
  root.append(marker);
  const mark = (i) => {
    marker.setAttribute("cx", at(xy[i][0]));
    marker.setAttribute("cy", -at(xy[i][1]));
  };
  mark(0);
  return { root, mark };
}

// A sparkline of the last values, scaled to their own maximum.
export function sparkline(values, label) {
  const width = 120;
  const height = 28;
  const top = Math.max(...values, 1e-9);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const coords = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / top) * (height - 4)).toFixed(1)}`);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "spark", role: "img", "aria-label": label });
  root.append(svg("polyline", { points: coords.join(" ") }));
  return root;
}
