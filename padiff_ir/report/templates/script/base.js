/* padiff-ir report, part 1 of 10: the data, small DOM and number helpers, tabs, the
 * sortable table and the metrics display (shared by the match and the training views). */
/* Dependency-free. Every string that comes from the result (module names, op attributes,
 * tensor names) reaches the page through textContent or setAttribute, never as markup. */
const SVG = "http://www.w3.org/2000/svg";
const D = JSON.parse(document.getElementById("padiff-data").textContent);
const SIDES = ["a", "b"];
const OTHER = { a: "b", b: "a" };
const LIMIT_UNITS = 60; // a graph opens collapsed until about this many boxes show
const MAX_ROWS = 1500;
const HIST_LABELS = ["<1e-11"].concat(
  Array.from({ length: 13 }, (_, k) => "1e" + (k - 11)), ["≥1e2"]);

// -- small helpers ------------------------------------------------------------------------
function el(tag, props, children) {
  const node = document.createElement(tag);
  applyProps(node, props);
  appendAll(node, children);
  return node;
}
function sv(tag, attrs, children) {
  const node = document.createElementNS(SVG, tag);
  for (const key in attrs || {}) node.setAttribute(key, attrs[key]);
  appendAll(node, children);
  return node;
}
function applyProps(node, props) {
  if (!props) return;
  for (const key in props) {
    const value = props[key];
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "cls") node.className = value;
    else if (key === "on") for (const ev in value) node.addEventListener(ev, value[ev]);
    else if (key === "data") for (const d in value) node.dataset[d] = value[d];
    else node.setAttribute(key, value);
  }
}
function appendAll(node, children) {
  if (children === undefined || children === null) return;
  if (!Array.isArray(children)) children = [children];
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}
function num(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return v;
  if (v === "inf" || v === "Infinity") return Infinity;
  if (v === "-inf" || v === "-Infinity") return -Infinity;
  if (v === "nan" || v === "NaN") return NaN;
  const n = Number(v);
  return Number.isNaN(n) ? null : n;
}
function fmt(v) {
  const n = num(v);
  if (n === null) return "-";
  if (Number.isNaN(n)) return "nan";
  if (!Number.isFinite(n)) return n > 0 ? "inf" : "-inf";
  if (n === 0) return "0";
  return n.toExponential(2);
}
function fmtValue(v) {
  if (v === null || v === undefined) return "-";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? String(Number(v.toPrecision(7))) : v.toExponential(3);
  }
  if (Array.isArray(v)) return "[" + v.map(fmtValue).join(", ") + "]";
  return String(v);
}
function shapeText(shape) {
  if (!shape) return "?";
  return "[" + shape.map((d) => (d === null ? "?" : d)).join(", ") + "]";
}
function cut(text, n) {
  text = String(text);
  return text.length <= n ? text : text.slice(0, n - 1) + "…";
}
function where(module) { return module ? module : "<root>"; }
function errColor(err) {
  if (err === null || err === undefined || Number.isNaN(err)) return "#ffffff";
  if (err === 0) return "hsl(130, 45%, 88%)";
  const t = Math.max(0, Math.min(1, (Math.log10(err) + 10) / 10));
  return "hsl(" + Math.round((1 - t) * 120) + ", 72%, " + Math.round(84 - 12 * t) + "%)";
}
// tolerance="auto": an error in units of its noise bound; within it green, out of it by up
// to `far` times amber, beyond that red (each darker as the ratio grows)
function noiseColor(ratio, far) {
  if (ratio === null || ratio === undefined) return "#ffffff";
  const r = ratio === "inf" ? Infinity : ratio;
  if (r <= 1) return "hsl(130, 45%, " + Math.round(90 - 8 * Math.max(0, Math.min(1, (Math.log10(Math.max(r, 1e-3)) + 3) / 3))) + "%)";
  if (r <= far) return "hsl(38, 90%, " + Math.round(78 - 10 * Math.log10(r) / Math.log10(far)) + "%)";
  return "hsl(4, 75%, " + Math.round(74 - 10 * Math.max(0, Math.min(1, Math.log10(r / far) / 3))) + "%)";
}
function noiseText(entry) {  // "0.4x noise", "2400x noise"
  if (!entry) return "-";
  const r = entry.ratio === "inf" ? Infinity : entry.ratio;
  return !Number.isFinite(r) ? "beyond noise" : (r < 10 ? r.toFixed(1) : r.toFixed(0)) + "x noise";
}
function prefixes(path) {
  if (!path) return [];
  const parts = path.split(".");
  const out = [];
  for (let k = 1; k <= parts.length; k++) out.push(parts.slice(0, k).join("."));
  return out;
}
function metricOf(obj) { return obj ? num(obj.max_abs) : null; }
function download(name, obj) {  // a data: link; a local blob: one past what URLs may hold
  const text = JSON.stringify(obj, null, 1);
  const href = text.length < 1500000 ? "data:application/json;charset=utf-8," + encodeURIComponent(text)
    : URL.createObjectURL(new Blob([text], { type: "application/json" }));
  return el("a", { cls: "link", download: name, text: "Download " + name, href });
}

// -- tabs --------------------------------------------------------------------------------
const builders = {};
const built = new Set();
function showTab(id) {
  for (const b of document.querySelectorAll("#tabs .tab"))
    b.classList.toggle("active", b.dataset.tab === id);
  for (const s of document.querySelectorAll(".tab-body"))
    s.classList.toggle("active", s.id === "tab-" + id);
  if (!built.has(id) && builders[id]) {
    built.add(id);
    builders[id](document.getElementById("tab-" + id));
  }
}
for (const b of document.querySelectorAll("#tabs .tab"))
  b.addEventListener("click", () => showTab(b.dataset.tab));

// -- generic sortable, filterable table ----------------------------------------------------
function dataTable(container, columns, rows, options) {
  options = options || {};
  const state = { key: options.sortKey === undefined ? -1 : options.sortKey, desc: !!options.desc,
                  filter: "", onlyFailing: false };
  const filter = el("input", { type: "search", placeholder: options.placeholder || "filter" });
  const count = el("span", { cls: "muted" });
  const tools = el("div", { cls: "table-tools" }, [filter, count]);
  let failing = null;
  if (options.isFailing) {
    failing = el("input", { type: "checkbox" });
    tools.insertBefore(el("label", null, [failing, " failing only"]), count);
  }
  if (options.extra) appendAll(tools, options.extra);
  const head = el("tr");
  const body = el("tbody");
  const table = el("table", { cls: "data" }, [el("thead", null, head), body]);
  columns.forEach((col, k) => {
    const th = el("th", { text: col.label, title: col.title || "" });
    th.addEventListener("click", () => {
      state.desc = state.key === k ? !state.desc : !!col.num;
      state.key = k;
      draw();
    });
    head.appendChild(th);
  });
  const texts = rows.map((row) => columns.map((c) => String(c.show ? c.show(row) : c.get(row))));
  const hay = texts.map((t) => t.join(" ").toLowerCase());
  function draw() {
    const q = state.filter.toLowerCase();
    let order = rows.map((_, i) => i).filter((i) => (!q || hay[i].includes(q)) &&
      (!state.onlyFailing || options.isFailing(rows[i])));
    if (state.key >= 0) {
      const col = columns[state.key];
      const values = rows.map((r) => col.get(r));
      order.sort((i, j) => {
        let x = values[i], y = values[j];
        if (col.num) { x = num(x); y = num(y); x = x === null || Number.isNaN(x) ? -Infinity : x;
                       y = y === null || Number.isNaN(y) ? -Infinity : y; }
        const c = x < y ? -1 : x > y ? 1 : i - j;
        return state.desc ? -c : c;
      });
    }
    head.querySelectorAll("th").forEach((th, k) => {
      th.classList.toggle("sorted-asc", k === state.key && !state.desc);
      th.classList.toggle("sorted-desc", k === state.key && state.desc);
    });
    body.replaceChildren();
    for (const i of order.slice(0, MAX_ROWS)) {
      const tr = el("tr", { cls: options.isFailing && options.isFailing(rows[i]) ? "fail" : "" });
      columns.forEach((col, k) => tr.appendChild(el("td", { cls: col.num ? "num" : "", text: texts[i][k] })));
      if (options.onClick) tr.addEventListener("click", () => options.onClick(rows[i]));
      body.appendChild(tr);
    }
    count.textContent = order.length > MAX_ROWS
      ? "showing " + MAX_ROWS + " of " + order.length + " rows (refine the filter)"
      : order.length + " of " + rows.length + " rows";
  }
  let timer = null;
  filter.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.filter = filter.value.trim(); draw(); }, 120);
  });
  if (failing) failing.addEventListener("change", () => { state.onlyFailing = failing.checked; draw(); });
  appendAll(container, [tools, el("div", { cls: "table-scroll" }, table)]);
  draw();
  return { draw };
}

// -- metrics display -----------------------------------------------------------------------
const METRIC_KEYS = ["max_abs", "max_rel", "mean_abs", "cosine", "out_of_tolerance", "numel",
  "shape_a", "shape_b", "dtype_a", "dtype_b", "mean_a", "mean_b", "abs_mean_a", "abs_mean_b",
  "nan_a", "nan_b", "inf_a", "inf_b"];
function metricsTable(m, title) {
  if (!m) return null;
  const rows = [el("tr", null, [el("th", { text: "verdict" }),
    el("td", null, el("span", { cls: "badge " + (m.ok ? "ok" : "fail"), text: m.ok ? "ok" : "fail" }))])];
  if (m.reason) rows.push(el("tr", null, [el("th", { text: "reason" }), el("td", { text: m.reason })]));
  for (const key of METRIC_KEYS) {
    if (!(key in m)) continue;
    let value = m[key];
    if (key === "max_abs" || key === "max_rel" || key === "mean_abs") value = fmt(value);
    else if (key === "out_of_tolerance") value = (100 * (num(value) || 0)).toFixed(2) + "%";
    else value = fmtValue(value);
    rows.push(el("tr", null, [el("th", { text: key }), el("td", { cls: "num", text: value })]));
  }
  return [el("h4", { text: title }), el("table", null, el("tbody", null, rows)), histogram(m.error_histogram)];
}
function histogram(counts) {
  if (!counts || !counts.length) return null;
  const W = 330, H = 110, pad = 22, bw = (W - pad) / counts.length;
  const total = counts.reduce((s, c) => s + c, 0) || 1;
  const max = Math.max.apply(null, counts.map((c) => Math.sqrt(c))) || 1;
  const svg = sv("svg", { width: W, height: H + 30, class: "histogram" });
  svg.appendChild(sv("text", { x: 0, y: 10, "font-size": 10, fill: "#475467" },
    "elementwise |a−b| (log10 bins, sqrt count)"));
  counts.forEach((c, k) => {
    const h = (Math.sqrt(c) / max) * (H - 20);
    const bar = sv("rect", { x: pad + k * bw + 1, y: H - h, width: bw - 2, height: Math.max(h, c ? 1 : 0),
      fill: errColor(k === 0 ? 0 : Math.pow(10, k - 12)), stroke: "#98a2b3" });
    bar.appendChild(sv("title", null, HIST_LABELS[k] + ": " + c + " (" + (100 * c / total).toFixed(1) + "%)"));
    svg.appendChild(bar);
    if (k % 2 === 0) svg.appendChild(sv("text", { x: pad + k * bw, y: H + 12, "font-size": 9, fill: "#475467" }, HIST_LABELS[k]));
  });
  svg.appendChild(sv("line", { x1: pad, x2: W, y1: H, y2: H, stroke: "#98a2b3" }));
  return svg;
}
function dl(items) {
  const list = el("dl");
  for (const [k, v] of items) {
    if (v === null || v === undefined || v === "") continue;
    list.appendChild(el("dt", { text: k }));
    list.appendChild(typeof v === "object" ? el("dd", null, v) : el("dd", { text: v }));
  }
  return list;
}
