/* padiff-ir report: draws the graphs, tables and charts from the JSON block of this page.
 *
 * Dependency-free. Every string that comes from the result (module names, op attributes,
 * tensor names) reaches the page through textContent or setAttribute, never as markup.
 * When the first view is drawn, <html data-ready="true"> is set (the tests wait for it).
 */
(function () {
  "use strict";
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

  if (D.kind === "match" || D.kind === undefined) initMatch();
  else initTraining();

  // =========================================================================================
  // match results: two graphs, pairs, layer map
  // =========================================================================================
  function initMatch() {
    const IDX = D.index || {};
    const pairs = D.pairs || [];
    const modules = D.modules || [];
    const graphs = D.graphs || {};
    const pairNodes = { a: new Map(), b: new Map() };
    const tensorNode = { a: new Map(), b: new Map() };
    for (const side of SIDES) {
      (IDX.node_pair && IDX.node_pair[side] || []).forEach((p, i) => {
        if (p < 0) return;
        if (!pairNodes[side].has(p)) pairNodes[side].set(p, []);
        pairNodes[side].get(p).push(i);
      });
      const view = graphs[side];
      if (view) view.nodes.forEach((n, i) => (n.out || []).forEach((t) => tensorNode[side].set(t, i)));
    }
    const groupPairs = new Set(IDX.groups || []);
    for (const side of SIDES) for (const p of groupPairs)
      for (const t of pairs[p][side] || []) {
        const i = tensorNode[side].get(t);
        if (i !== undefined && !(pairNodes[side].get(p) || []).includes(i)) {
          if (!pairNodes[side].has(p)) pairNodes[side].set(p, []);
          pairNodes[side].get(p).push(i);
        }
      }
    function moduleResult(side, path) {
      const k = IDX.module_result && IDX.module_result[side] ? IDX.module_result[side][path] : undefined;
      return k === undefined ? null : modules[k];
    }
    function sideLabel(side) {
      const m = side === "a" ? D.model_a || {} : D.model_b || {};
      return side.toUpperCase() + " · " + (m.framework || "?") + " " + (m["class"] || "");
    }

    // -- one graph pane -----------------------------------------------------------------------
    class Pane {
      constructor(side, view, host) {
        this.side = side;
        this.view = view;
        this.nodes = view.nodes;
        this.edges = view.edges || [];
        this.expanded = new Set();
        this.zoom = 1;
        this.hits = new Set();
        this.unitEls = new Map();
        this.anc = this.nodes.map((n) => prefixes(n.module));
        this.opCount = new Map();
        this.children = new Map([["", new Set()]]);
        for (const list of this.anc) {
          for (let k = 0; k < list.length; k++) {
            const p = list[k];
            this.opCount.set(p, (this.opCount.get(p) || 0) + 1);
            const parent = k ? list[k - 1] : "";
            if (!this.children.has(parent)) this.children.set(parent, new Set());
            this.children.get(parent).add(p);
          }
        }
        const nodePair = (IDX.node_pair && IDX.node_pair[side]) || [];
        const unmatched = (IDX.node_unmatched && IDX.node_unmatched[side]) || {};
        this.pairOf = this.nodes.map((_, i) => (nodePair[i] === undefined ? -1 : nodePair[i]));
        this.err = this.pairOf.map((p) => (p >= 0 ? metricOf(pairs[p].metrics) : null));
        this.failing = this.pairOf.map((p) => p >= 0 && !pairs[p].metrics.ok);
        this.unmatched = this.nodes.map((_, i) => unmatched[String(i)]);
        this.title = el("div", { cls: "pane-title", text: sideLabel(side) + " — " + this.nodes.length + " ops" });
        this.scroll = el("div", { cls: "pane-scroll" });
        host.appendChild(el("div", { cls: "pane", "data-side": side }, [this.title, this.scroll]));
        this.scroll.addEventListener("click", (ev) => this.onClick(ev));
        this.scroll.addEventListener("dblclick", (ev) => this.onDblClick(ev));
      }
      unitKey(i, expanded) {
        expanded = expanded || this.expanded;
        for (const p of this.anc[i]) if (!expanded.has(p)) return "m:" + p;
        return "n:" + i;
      }
      countUnits(expanded) {
        const keys = new Set();
        for (let i = 0; i < this.nodes.length; i++) keys.add(this.unitKey(i, expanded));
        return keys.size;
      }
      autoExpand(limit) {
        let expanded = new Set();
        let frontier = Array.from(this.children.get("") || []);
        while (frontier.length) {
          const trial = new Set(expanded);
          frontier.forEach((p) => trial.add(p));
          const count = this.countUnits(trial);
          // too few boxes tell nothing: open one more level even past the limit (100 blocks)
          if (count > limit && (this.countUnits(expanded) > 3 || count > 8 * limit)) break;
          expanded = trial;
          const next = [];
          for (const p of frontier) for (const c of this.children.get(p) || []) next.push(c);
          frontier = next;
        }
        this.expanded = expanded;
      }
      expandAll() { this.expanded = new Set(this.opCount.keys()); }
      collapseAll() { this.expanded = new Set(); }
      hasModule(path) { return path === "" || this.opCount.has(path); }
      isExpanded(path) { return path === "" || this.expanded.has(path); }
      setExpanded(path, on) {
        if (!path) return;
        if (on) { for (const p of prefixes(path)) this.expanded.add(p); }
        else for (const p of Array.from(this.expanded)) if (p === path || p.startsWith(path + ".")) this.expanded.delete(p);
      }
      expandAllOf(list) {
        let changed = false;
        for (const p of list) if (!this.expanded.has(p)) { this.expanded.add(p); changed = true; }
        return changed;
      }
      revealNode(i) { return this.expandAllOf(this.anc[i]); }
      revealModule(path) { const list = prefixes(path); list.pop(); return this.expandAllOf(list); }
      moduleInfo(path, nodes) {
        const res = moduleResult(this.side, path);
        let err = res ? metricOf(res.output) : null;
        let failing = res ? !!(res.output && !res.output.ok) : false;
        if (!res) for (const i of nodes) {
          if (this.err[i] !== null && (err === null || this.err[i] > err)) err = this.err[i];
          failing = failing || this.failing[i];
        }
        return { res, err, failing, status: res ? res.status : "" };
      }

      layout() {
        const units = new Map();
        const unitOf = new Array(this.nodes.length);
        for (let i = 0; i < this.nodes.length; i++) {
          const key = this.unitKey(i);
          let u = units.get(key);
          if (!u) {
            u = { key, nodes: [], preds: [], order: units.size };
            if (key.startsWith("m:")) { u.kind = "module"; u.path = key.slice(2); }
            else { u.kind = "op"; u.index = i; u.path = this.nodes[i].module; }
            units.set(key, u);
          }
          u.nodes.push(i);
          unitOf[i] = u;
        }
        const list = Array.from(units.values());
        const edges = new Map();
        for (const [s, t] of this.edges) {
          const U = unitOf[s], V = unitOf[t];
          if (!U || !V || U === V) continue;
          const key = U.order + "," + V.order;
          if (edges.has(key)) continue;
          edges.set(key, { U, V, back: U.order > V.order });
          if (U.order < V.order) V.preds.push(U);
        }
        const layers = [];
        for (const u of list) {
          u.layer = 0;
          for (const p of u.preds) u.layer = Math.max(u.layer, p.layer + 1);
          (layers[u.layer] = layers[u.layer] || []).push(u);
        }
        let maxX = 0;
        for (const layer of layers) {
          if (!layer) continue;
          for (const u of layer) {  // under the deepest input: the main chain stays straight
            let main = null;
            for (const p of u.preds) if (!main || p.layer > main.layer || (p.layer === main.layer && p.x < main.x)) main = p;
            u.want = main ? main.x : 0;
          }
          layer.sort((x, y) => x.want - y.want || x.order - y.order);
          let last = -1;
          for (const u of layer) { u.x = Math.max(Math.round(u.want), last + 1); last = u.x; }
          maxX = Math.max(maxX, last);
        }
        let depth = 0;
        for (const u of list) {
          let d = 0;
          for (const p of prefixes(u.path)) if (this.expanded.has(p)) d++;
          depth = Math.max(depth, d);
        }
        const SW = 206, RH = 80, M = 30 + Math.min(6 + 13 * depth, 84);
        for (const u of list) {
          u.w = u.kind === "module" ? 176 : 150;
          u.h = u.kind === "module" ? 46 : 36;
          u.px = M + u.x * SW + (SW - u.w) / 2;
          u.py = 40 + u.layer * RH;
        }
        this.units = list;
        this.unitMap = units;
        this.unitEdges = Array.from(edges.values());
        this.width = 2 * M + (maxX + 1) * SW;
        this.height = 80 + layers.length * RH;
      }

      render() {
        this.layout();
        const W = this.width, H = this.height;
        const svg = sv("svg", { width: W * this.zoom, height: H * this.zoom, viewBox: "0 0 " + W + " " + H });
        const gFrames = sv("g"), gEdges = sv("g"), gUnits = sv("g");
        svg.appendChild(gFrames); svg.appendChild(gEdges); svg.appendChild(gUnits);
        // frames of expanded modules
        const boxes = new Map();
        for (const u of this.units) {
          const list = prefixes(u.path);
          if (u.kind === "module") list.pop();
          for (const p of list) {
            if (!this.expanded.has(p)) continue;
            const b = boxes.get(p) || { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
            b.x0 = Math.min(b.x0, u.px); b.y0 = Math.min(b.y0, u.py);
            b.x1 = Math.max(b.x1, u.px + u.w); b.y1 = Math.max(b.y1, u.py + u.h);
            boxes.set(p, b);
          }
        }
        const paths = Array.from(boxes.keys()).sort((x, y) => y.split(".").length - x.split(".").length);
        const level = new Map();
        for (const p of paths) {
          const own = level.get(p) || 1;
          level.set(p, own);
          const parent = p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : null;
          if (parent !== null && boxes.has(parent)) level.set(parent, Math.max(level.get(parent) || 1, own + 1));
        }
        for (const p of paths.slice().reverse()) {
          const b = boxes.get(p), lv = level.get(p);
          const padX = Math.min(6 + 13 * lv, 84), padY = Math.min(4 + 4 * lv, 28);
          const res = moduleResult(this.side, p);
          const frame = sv("g", { class: "frame" + (res && res.status === "culprit" ? " culprit" : ""), "data-path": p });
          const fx = b.x0 - padX, fy = b.y0 - padY, fh = b.y1 - b.y0 + 2 * padY;
          frame.appendChild(sv("rect", { x: fx, y: fy, width: b.x1 - b.x0 + 2 * padX, height: fh, rx: 6 }));
          const name = p.split(".").pop();
          const label = sv("text", { x: fx + 3, y: fy + 4, class: "frame-label", "data-path": p,
            transform: "rotate(90 " + (fx + 3) + " " + (fy + 4) + ")" },
            "⊖ " + cut(name + " · " + (this.view.modules[p] || ""), Math.max(4, Math.floor(fh / 6.3))));
          label.appendChild(sv("title", null, p + " (" + (this.view.modules[p] || "") + "): click to collapse"));
          frame.appendChild(label);
          gFrames.appendChild(frame);
        }
        // edges
        for (const e of this.unitEdges) {
          const x1 = e.U.px + e.U.w / 2, y1 = e.U.py + e.U.h, x2 = e.V.px + e.V.w / 2, y2 = e.V.py;
          const dy = Math.max(24, (y2 - y1) / 2);
          const d = e.back ? "M" + x1 + "," + (e.U.py) + " C" + (x1 + 60) + "," + (y1 - 40) + " " + (x2 + 60) + "," + (y2 + 40) + " " + x2 + "," + (y2 + e.V.h)
            : "M" + x1 + "," + y1 + " C" + x1 + "," + (y1 + dy) + " " + x2 + "," + (y2 - dy) + " " + x2 + "," + y2;
          gEdges.appendChild(sv("path", { d, class: "edge" + (e.back ? " back" : "") }));
        }
        // N:M groups drawn as one dashed outline
        for (const p of groupPairs) {
          const members = (pairNodes[this.side].get(p) || []).map((i) => this.unitMap.get(this.unitKey(i)));
          const distinct = Array.from(new Set(members));
          if (distinct.length < 2 || distinct.some((u) => u.kind !== "op")) continue;
          const x0 = Math.min(...distinct.map((u) => u.px)) - 5, y0 = Math.min(...distinct.map((u) => u.py)) - 5;
          const x1 = Math.max(...distinct.map((u) => u.px + u.w)) + 5, y1 = Math.max(...distinct.map((u) => u.py + u.h)) + 5;
          const r = sv("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, rx: 8, class: "group-frame" });
          r.appendChild(sv("title", null, "N:M group #" + p + ": " + pairs[p].a.length + " tensor(s) of A ↔ " + pairs[p].b.length + " of B"));
          gFrames.appendChild(r);
        }
        // units
        this.unitEls = new Map();
        for (const u of this.units) gUnits.appendChild(this.drawUnit(u));
        this.scroll.replaceChildren(svg);
        this.svg = svg;
        this.applyMarks();
      }

      drawUnit(u) {
        const g = sv("g", { class: "unit", transform: "translate(" + u.px + "," + u.py + ")",
          "data-key": u.key, "data-side": this.side, "data-kind": u.kind, "data-module": u.path });
        let fill, line1, line2, tip;
        const classes = [];
        if (u.kind === "op") {
          const n = this.nodes[u.index];
          g.setAttribute("data-id", n.id);
          fill = errColor(this.err[u.index]);
          if (this.failing[u.index]) classes.push("failing");
          if (this.unmatched[u.index] !== undefined) classes.push("unmatched");
          if (groupPairs.has(this.pairOf[u.index])) classes.push("group");
          line1 = (n.domain ? n.domain + "::" : "") + n.op;
          line2 = shapeText(n.shape) + (this.err[u.index] !== null ? "  " + fmt(this.err[u.index]) : "");
          tip = n.op + " " + n.id + "\n" + where(n.module) + "\nmax abs " + fmt(this.err[u.index]) +
            (this.unmatched[u.index] !== undefined ? "\nunmatched: " + this.unmatched[u.index] : "");
        } else {
          const info = this.moduleInfo(u.path, u.nodes);
          g.setAttribute("data-id", u.path);
          fill = errColor(info.err);
          if (info.failing) classes.push("failing");
          if (info.status === "culprit") classes.push("culprit");
          if (info.status === "contains-culprit") classes.push("contains-culprit");
          if (u.nodes.every((i) => this.unmatched[i] !== undefined)) classes.push("unmatched");
          line1 = u.path.split(".").pop() + " · " + (this.view.modules[u.path] || "");
          line2 = u.nodes.length + " ops · " + (info.status || "max") + " " + fmt(info.err);
          tip = u.path + " (" + (this.view.modules[u.path] || "") + ")\n" + u.nodes.length +
            " ops; double-click or ⊕ to expand";
        }
        for (const c of classes) g.classList.add(c);
        g.appendChild(sv("rect", { class: "box", width: u.w, height: u.h, rx: u.kind === "module" ? 7 : 4, fill }));
        g.appendChild(sv("text", { x: 7, y: 14 }, cut(line1, u.kind === "module" ? 24 : 22)));
        g.appendChild(sv("text", { x: 7, y: 29, class: "sub" }, cut(line2, 28)));
        if (u.kind === "module") {
          const t = sv("g", { class: "toggle", transform: "translate(" + (u.w - 20) + ",4)", "data-path": u.path });
          t.appendChild(sv("rect", { width: 16, height: 16, rx: 3 }));
          t.appendChild(sv("text", { x: 4, y: 13 }, "+"));
          t.appendChild(sv("title", null, "expand " + u.path));
          g.appendChild(t);
        }
        g.appendChild(sv("title", null, tip));
        this.unitEls.set(u.key, g);
        return g;
      }

      applyMarks() {
        for (const g of this.unitEls.values()) g.classList.remove("selected", "partner", "hit");
        const sel = STATE.sel;
        const mark = (key, cls) => { const g = this.unitEls.get(key); if (g) g.classList.add(cls); };
        if (sel) {
          if (sel.side === this.side) mark(this.keyOf(sel.kind, sel.id), "selected");
          else for (const [kind, id] of partnersOf(sel)) mark(this.keyOf(kind, id), "partner");
        }
        for (const key of this.hits) mark(key, "hit");
      }
      keyOf(kind, id) {
        if (kind === "op") return this.unitKey(id);
        for (const p of prefixes(id)) if (!this.expanded.has(p)) return "m:" + p;
        return null; // an expanded module is drawn as a frame
      }
      scrollTo(kind, id) {
        const key = this.keyOf(kind, id);
        let u = key ? this.unitMap.get(key) : null;
        if (!u && kind === "module") u = this.units.find((v) => v.path === id || v.path.startsWith(id + "."));
        if (!u) return;
        const z = this.zoom;
        this.scroll.scrollLeft = Math.max(0, (u.px + u.w / 2) * z - this.scroll.clientWidth / 2);
        this.scroll.scrollTop = Math.max(0, (u.py + u.h / 2) * z - this.scroll.clientHeight / 2);
      }
      onClick(ev) {
        const toggle = ev.target.closest(".toggle");
        if (toggle) { toggleModule(this.side, toggle.getAttribute("data-path"), true); return; }
        const label = ev.target.closest(".frame-label");
        if (label) { toggleModule(this.side, label.getAttribute("data-path"), false); return; }
        const g = ev.target.closest(".unit");
        if (!g) return;
        const key = g.getAttribute("data-key");
        if (key.startsWith("n:")) select(this.side, "op", Number(key.slice(2)), { reveal: false });
        else select(this.side, "module", key.slice(2), { reveal: false });
      }
      onDblClick(ev) {
        const g = ev.target.closest(".unit");
        if (g && g.getAttribute("data-kind") === "module") toggleModule(this.side, g.getAttribute("data-module"), true);
      }
    }

    // -- selection, expansion, panel -------------------------------------------------------
    const STATE = { sel: null, panes: {} };
    function partnersOf(sel) {
      const out = [];
      if (sel.kind === "op") {
        const pane = STATE.panes[sel.side];
        const p = pane ? pane.pairOf[sel.id] : -1;
        if (p >= 0) for (const i of pairNodes[OTHER[sel.side]].get(p) || []) out.push(["op", i]);
      } else {
        const partner = IDX.module_partner && IDX.module_partner[sel.side] ? IDX.module_partner[sel.side][sel.id] : undefined;
        if (partner !== undefined) out.push(["module", partner]);
      }
      return out;
    }
    function renderAll() { for (const side of SIDES) if (STATE.panes[side]) STATE.panes[side].render(); }
    function toggleModule(side, path, on) {
      const pane = STATE.panes[side];
      pane.setExpanded(path, on);
      const partner = IDX.module_partner && IDX.module_partner[side] ? IDX.module_partner[side][path] : undefined;
      const other = STATE.panes[OTHER[side]];
      if (partner !== undefined && other && other.hasModule(partner)) other.setExpanded(partner, on);
      renderAll();
      if (on) select(side, "module", path, { reveal: false, keepScroll: true });
    }
    function select(side, kind, id, opts) {
      opts = opts || {};
      STATE.sel = { side, kind, id };
      const pane = STATE.panes[side];
      let changed = !!opts.render;
      if (pane && opts.reveal !== false)
        changed = (kind === "op" ? pane.revealNode(id) : pane.revealModule(id)) || changed;
      const other = STATE.panes[OTHER[side]];
      const partners = partnersOf(STATE.sel);
      if (other) for (const [k, pid] of partners) {
        if (k === "op") changed = other.revealNode(pid) || changed;
        else if (other.hasModule(pid)) changed = other.revealModule(pid) || changed;
      }
      if (changed) renderAll();
      else for (const s of SIDES) if (STATE.panes[s]) STATE.panes[s].applyMarks();
      if (pane && !opts.keepScroll) pane.scrollTo(kind, id);
      if (other && partners.length) other.scrollTo(partners[0][0], partners[0][1]);
      showPanel(kind === "op" ? opPanel(side, id) : modulePanel(side, id));
    }
    const panel = el("aside", { cls: "panel", id: "panel" },
      el("p", { cls: "muted", text: "Click a node or a module to see its details." }));
    function showPanel(content) {
      panel.replaceChildren();
      appendAll(panel, content);
      panel.scrollTop = 0;
    }
    function nodeLink(side, i) {
      const pane = STATE.panes[side];
      const n = pane.nodes[i];
      return el("a", { cls: "link", text: n.op + " " + n.id, on: { click: () => select(side, "op", i) } });
    }
    function moduleLink(side, path) {
      return el("a", { cls: "link", text: where(path), on: { click: () => select(side, "module", path) } });
    }
    function opPanel(side, i) {
      const pane = STATE.panes[side];
      const n = pane.nodes[i];
      const p = pane.pairOf[i];
      const out = [el("h3", { text: n.op + " · " + n.id }),
        el("div", { cls: "muted", text: sideLabel(side) })];
      out.push(dl([
        ["module", moduleLink(side, n.module)], ["class", n["class"]],
        ["outputs", (n.out || []).join(", ")], ["shape", shapeText(n.shape)], ["dtype", n.dtype],
        ["parameters", (n.params || []).join(", ")],
        ["source", n.source ? el("code", { text: n.source }) : null],
        ["ONNX nodes", n.onnx ? n.onnx.join(", ") : null],
      ]));
      if (n.attrs && Object.keys(n.attrs).length) {
        out.push(el("h4", { text: "attributes" }));
        out.push(el("table", null, el("tbody", null, Object.keys(n.attrs).map((k) =>
          el("tr", null, [el("th", { text: k }), el("td", { cls: "mono", text: n.attrs[k] })])))));
      }
      if (pane.unmatched[i] !== undefined)
        out.push(el("p", null, [el("span", { cls: "badge warn", text: "unmatched" }), " ", pane.unmatched[i]]));
      if (p >= 0) out.push(pairSection(p, side));
      else if (pane.unmatched[i] === undefined)
        out.push(el("p", { cls: "muted", text: "Not compared: no tensor pair holds this op's output." }));
      return out;
    }
    function pairSection(p, side) {
      const pair = pairs[p];
      const other = OTHER[side];
      const partnerNodes = pairNodes[other].get(p) || [];
      const items = [el("h4", { text: "pair #" + p + (groupPairs.has(p) ? " (N:M group)" : "") })];
      items.push(dl([
        ["A", pair.op_a + " in " + where(pair.module_a)], ["A tensors", pair.a.join(", ")],
        ["B", pair.op_b + " in " + where(pair.module_b)], ["B tensors", pair.b.join(", ")],
        ["partner", partnerNodes.length && STATE.panes[other]
          ? el("span", null, partnerNodes.map((i) => nodeLink(other, i))) : null],
        ["confidence", fmtValue(pair.confidence)], ["evidence", (pair.evidence || []).join(", ")],
      ]));
      if (groupPairs.has(p)) items.push(el("span", { cls: "badge group", text: pair.a.length + ":" + pair.b.length + " group" }));
      const m = metricsTable(pair.metrics, "A vs B as run");
      if (m) items.push(...m);
      const own = metricsTable(pair.own, "own error (B's op fed A's inputs)");
      if (own) items.push(...own);
      return el("div", null, items);
    }
    function modulePanel(side, path) {
      const pane = STATE.panes[side];
      const cls = pane ? pane.view.modules[path] || "" : "";
      const res = moduleResult(side, path);
      const partner = IDX.module_partner && IDX.module_partner[side] ? IDX.module_partner[side][path] : undefined;
      const expanded = pane && pane.isExpanded(path);
      const out = [el("h3", { text: where(path) }), el("div", { cls: "muted", text: cls + " · " + sideLabel(side) })];
      out.push(el("p", null, el("button", { type: "button", text: expanded ? "Collapse" : "Expand",
        on: { click: () => toggleModule(side, path, !expanded) } })));
      out.push(dl([
        ["ops", pane ? String(pane.opCount.get(path) || (path === "" ? pane.nodes.length : 0)) : null],
        ["partner", partner !== undefined ? moduleLink(OTHER[side], partner) : "no module pair in the layer map"],
        ["status", res ? el("span", { cls: "badge " + (res.status === "ok" ? "ok" : res.status === "unmeasured" ? "" : "fail"), text: res.status }) : null],
      ]));
      if (res) {
        out.push(el("h4", { text: "errors (max abs)" }));
        const row = (label, m) => el("tr", null, [el("th", { text: label }), el("td", { cls: "num", text: fmt(metricOf(m)) }),
          el("td", { text: m ? (m.ok ? "ok" : "fail") : "-" })]);
        out.push(el("table", null, el("tbody", null, [row("output", res.output), row("own", res.own), row("inputs (inherited)", res.inputs)])));
        if (res.attribute_diffs && res.attribute_diffs.length) {
          out.push(el("h4", { text: "differing op attributes" }));
          out.push(el("ul", null, res.attribute_diffs.map((t) => el("li", { cls: "mono", text: t }))));
        }
        if (res.param_diffs && res.param_diffs.length) {
          out.push(el("h4", { text: "differing parameters" }));
          out.push(el("ul", null, res.param_diffs.map((t) => el("li", { cls: "mono", text: t }))));
        }
        const m = metricsTable(res.output, "outputs A vs B");
        if (m) out.push(...m);
        const own = metricsTable(res.own, "own error (B's module fed A's inputs)");
        if (own) out.push(...own);
      }
      const lm = (D.layer_map || []).find((e) => (side === "a" ? e.a : e.b) === path);
      if (lm) {
        out.push(el("h4", { text: "layer map entry" }));
        out.push(dl([["A", where(lm.a) + " (" + lm.class_a + ")"], ["B", where(lm.b) + " (" + lm.class_b + ")"],
          ["confidence", fmtValue(lm.confidence)], ["evidence", (lm.evidence || []).join(", ")],
          ["black box", lm.black_box ? "yes (only boundary tensors compared)" : "no"],
          ["inputs A", (lm.inputs_a || []).join(", ")], ["outputs A", (lm.outputs_a || []).join(", ")],
          ["inputs B", (lm.inputs_b || []).join(", ")], ["outputs B", (lm.outputs_b || []).join(", ")]]));
      }
      return out;
    }

    // -- graphs tab ----------------------------------------------------------------------------
    function buildGraphs(host) {
      const hasGraphs = !!(graphs.a || graphs.b);
      const search = el("input", { type: "search", id: "search", placeholder: "search module path or op (e.g. blocks.3.attn, Softmax)" });
      const results = el("div", { cls: "search-results", hidden: "hidden" });
      const legend = el("div", { cls: "legend" }, [
        "max |a−b|: 1e-10", el("canvas", { cls: "scale", width: 160, height: 10, id: "scale" }), "1",
        el("span", null, [el("span", { cls: "swatch", style: "background:#eceff3;border-style:dashed" }), "unmatched"]),
        el("span", null, [el("span", { cls: "swatch", style: "border:2px solid #c62828" }), "culprit / failing"]),
        el("span", null, [el("span", { cls: "swatch", style: "border:2px solid #7b3fb3" }), "N:M group"]),
      ]);
      const buttons = [
        ["Collapse all", () => { for (const s of SIDES) if (STATE.panes[s]) STATE.panes[s].collapseAll(); renderAll(); }],
        ["Expand all", () => { for (const s of SIDES) if (STATE.panes[s]) STATE.panes[s].expandAll(); renderAll(); }],
        ["Reset", () => { for (const s of SIDES) if (STATE.panes[s]) STATE.panes[s].autoExpand(LIMIT_UNITS); renderAll(); }],
        ["−", () => zoom(1 / 1.25)], ["+", () => zoom(1.25)],
      ].map(([text, fn]) => el("button", { type: "button", text, on: { click: fn }, "data-action": text }));
      host.appendChild(el("div", { cls: "toolbar" }, [search, results].concat(buttons, [legend])));
      const area = el("div", { cls: "graph-area" });
      host.appendChild(area);
      if (!hasGraphs) {
        area.appendChild(el("div", { cls: "empty", style: "grid-column: span 2",
          text: "This result holds no graph structure (result.graphs is empty): the pairs, modules and layer map are in the other tabs." }));
      }
      for (const side of SIDES) if (graphs[side]) {
        const pane = new Pane(side, graphs[side], area);
        pane.autoExpand(LIMIT_UNITS);
        STATE.panes[side] = pane;
      }
      area.appendChild(panel);
      renderAll();
      const canvas = document.getElementById("scale");
      if (canvas) {
        const ctx = canvas.getContext("2d");
        for (let x = 0; x < 160; x++) { ctx.fillStyle = errColor(Math.pow(10, -10 + (10 * x) / 159)); ctx.fillRect(x, 0, 1, 10); }
      }
      let timer = null;
      search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => runSearch(search.value, results), 150); });
      search.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter") { const first = results.querySelector("div"); if (first) first.click(); }
        if (ev.key === "Escape") { search.value = ""; runSearch("", results); }
      });
    }
    function zoom(factor) {
      for (const side of SIDES) {
        const pane = STATE.panes[side];
        if (!pane) continue;
        pane.zoom = Math.max(0.2, Math.min(3, pane.zoom * factor));
        pane.svg.setAttribute("width", pane.width * pane.zoom);
        pane.svg.setAttribute("height", pane.height * pane.zoom);
      }
    }
    function runSearch(text, box) {
      const q = text.trim().toLowerCase();
      box.replaceChildren();
      for (const side of SIDES) if (STATE.panes[side]) STATE.panes[side].hits = new Set();
      if (!q) { box.hidden = true; for (const s of SIDES) if (STATE.panes[s]) STATE.panes[s].applyMarks(); return; }
      const found = [];
      for (const side of SIDES) {
        const pane = STATE.panes[side];
        if (!pane) continue;
        for (const path of pane.opCount.keys()) {
          if ((path + " " + (pane.view.modules[path] || "")).toLowerCase().includes(q)) {
            found.push([side, "module", path, "module " + path + " · " + (pane.view.modules[path] || "")]);
            const key = pane.keyOf("module", path);
            if (key) pane.hits.add(key);
          }
        }
        pane.nodes.forEach((n, i) => {
          if ((n.op + " " + n.module + " " + n.id).toLowerCase().includes(q)) {
            found.push([side, "op", i, n.op + " · " + where(n.module) + " · " + n.id]);
            pane.hits.add(pane.unitKey(i));
          }
        });
      }
      for (const [side, kind, id, label] of found.slice(0, 60))
        box.appendChild(el("div", { text: side.toUpperCase() + "  " + label,
          on: { click: () => { box.hidden = true; select(side, kind, id); } } }));
      if (!found.length) box.appendChild(el("div", { cls: "muted", text: "no module or op matches" }));
      else if (found.length > 60) box.appendChild(el("div", { cls: "muted", text: (found.length - 60) + " more: refine the search" }));
      box.hidden = false;
      for (const side of SIDES) if (STATE.panes[side]) STATE.panes[side].applyMarks();
    }

    // -- tables ---------------------------------------------------------------------------------
    function selectPair(p) {
      showTab("graphs");
      const nodesA = pairNodes.a.get(p), nodesB = pairNodes.b.get(p);
      if (nodesA && nodesA.length) select("a", "op", nodesA[0]);
      else if (nodesB && nodesB.length) select("b", "op", nodesB[0]);
      else showPanel([el("h3", { text: "pair #" + p }), pairSection(p, "a")]);
    }
    builders.pairs = (host) => {
      const rows = pairs.map((p, i) => Object.assign({ _i: i }, p));
      const m = (r) => r.metrics || {};
      dataTable(host, [
        { label: "#", get: (r) => r._i, num: true },
        { label: "status", get: (r) => (m(r).ok ? "ok" : "FAIL") },
        { label: "module A", get: (r) => where(r.module_a) },
        { label: "op A", get: (r) => r.op_a },
        { label: "module B", get: (r) => where(r.module_b) },
        { label: "op B", get: (r) => r.op_b },
        { label: "shape", get: (r) => shapeText(m(r).shape_a) },
        { label: "max abs", get: (r) => m(r).max_abs, show: (r) => fmt(m(r).max_abs), num: true },
        { label: "max rel", get: (r) => m(r).max_rel, show: (r) => fmt(m(r).max_rel), num: true },
        { label: "mean abs", get: (r) => m(r).mean_abs, show: (r) => fmt(m(r).mean_abs), num: true },
        { label: "cosine", get: (r) => m(r).cosine, show: (r) => (num(m(r).cosine) === null ? "-" : num(m(r).cosine).toFixed(6)), num: true },
        { label: "out of tol", get: (r) => m(r).out_of_tolerance, show: (r) => (100 * (num(m(r).out_of_tolerance) || 0)).toFixed(1) + "%", num: true },
        { label: "own max abs", get: (r) => (r.own ? r.own.max_abs : null), show: (r) => fmt(r.own ? r.own.max_abs : null), num: true },
        { label: "confidence", get: (r) => r.confidence, show: (r) => fmtValue(r.confidence), num: true },
        { label: "A tensors", get: (r) => r.a.join(", ") },
        { label: "B tensors", get: (r) => r.b.join(", ") },
      ], rows, { placeholder: "filter pairs (module, op, tensor)", isFailing: (r) => !m(r).ok, onClick: (r) => selectPair(r._i) });
    };
    builders.layers = (host) => {
      const rows = (D.layer_map || []).map((e) => Object.assign({ _res: moduleResult("a", e.a) }, e));
      const res = (r) => r._res || {};
      dataTable(host, [
        { label: "module A", get: (r) => where(r.a) }, { label: "class A", get: (r) => r.class_a },
        { label: "module B", get: (r) => where(r.b) }, { label: "class B", get: (r) => r.class_b },
        { label: "status", get: (r) => res(r).status || "-" },
        { label: "output", get: (r) => metricOf(res(r).output), show: (r) => fmt(metricOf(res(r).output)), num: true },
        { label: "own", get: (r) => metricOf(res(r).own), show: (r) => fmt(metricOf(res(r).own)), num: true },
        { label: "inputs", get: (r) => metricOf(res(r).inputs), show: (r) => fmt(metricOf(res(r).inputs)), num: true },
        { label: "confidence", get: (r) => r.confidence, show: (r) => fmtValue(r.confidence), num: true },
        { label: "black box", get: (r) => (r.black_box ? "yes" : "") },
        { label: "evidence", get: (r) => (r.evidence || []).join(", ") },
      ], rows, {
        placeholder: "filter modules", isFailing: (r) => ["culprit", "inherited", "contains-culprit"].includes(res(r).status),
        onClick: (r) => { showTab("graphs"); if (STATE.panes.a) select("a", "module", r.a); },
        extra: [download("layer_map.json", D.layer_map || []), download("result.json", resultOnly())],
      });
    };
    builders.unmatched = (host) => {
      const rows = D.unmatched || [];
      dataTable(host, [
        { label: "side", get: (r) => r.side.toUpperCase() }, { label: "kind", get: (r) => r.kind },
        { label: "name", get: (r) => r.name }, { label: "module", get: (r) => where(r.module) },
        { label: "op", get: (r) => r.op_type }, { label: "reason", get: (r) => r.reason },
      ], rows, {
        placeholder: "filter unmatched", onClick: (r) => {
          const pane = STATE.panes[r.side];
          if (!pane) return;
          showTab("graphs");
          if (r.kind === "module") { select(r.side, "module", r.name); return; }
          const i = r.kind === "op" ? pane.nodes.findIndex((n) => n.id === r.name) : tensorNode[r.side].get(r.name);
          if (i !== undefined && i >= 0) select(r.side, "op", i);
        },
      });
    };
    builders.graphs = buildGraphs;
    function resultOnly() {
      const copy = Object.assign({}, D);
      delete copy.index;
      return copy;
    }

    // -- summary buttons -----------------------------------------------------------------------
    for (const b of document.querySelectorAll("[data-reveal-module]")) b.addEventListener("click", () => {
      showTab("graphs");
      const path = b.getAttribute("data-reveal-module");
      if (STATE.panes.a) select("a", "module", path);
      document.getElementById("tabs").scrollIntoView();
    });
    for (const b of document.querySelectorAll("[data-reveal-first]")) b.addEventListener("click", () => {
      showTab("graphs");
      const p = IDX.first_divergence;
      if (p !== null && p !== undefined) selectPair(p);
      else if (D.first_divergence && STATE.panes.a) {
        const i = tensorNode.a.get((D.first_divergence.a || [])[0]);
        if (i !== undefined) select("a", "op", i);
      }
      document.getElementById("tabs").scrollIntoView();
    });
    showTab("graphs");
  }

  // =========================================================================================
  // auto_diff (training) results: steps, losses, gradients, weights, optimizer states
  // =========================================================================================
  function initTraining() {
    const T = D.training || {};
    function chartBox(title, content) { return el("div", { cls: "chart" }, [el("h4", { text: title }), content]); }
    function lineChart(series, opts) {
      const W = 520, H = 220, L = 56, B = 28, R = 10, TOP = 10;
      const all = [];
      for (const s of series) for (const v of s.values) { const n = num(v); if (n !== null && Number.isFinite(n) && (!opts.log || n > 0)) all.push(n); }
      const svg = sv("svg", { width: W, height: H });
      if (!all.length) { svg.appendChild(sv("text", { x: L, y: H / 2 }, "no values")); return svg; }
      const tr = (v) => (opts.log ? Math.log10(v) : v);
      let lo = Math.min(...all.map(tr)), hi = Math.max(...all.map(tr));
      if (hi === lo) { hi += 1; lo -= opts.log ? 1 : 0; }
      const steps = Math.max(...series.map((s) => s.values.length));
      const X = (k) => L + (steps <= 1 ? 0 : (k * (W - L - R)) / (steps - 1));
      const Y = (v) => TOP + (1 - (tr(v) - lo) / (hi - lo)) * (H - TOP - B);
      svg.appendChild(sv("line", { x1: L, x2: L, y1: TOP, y2: H - B, class: "axis" }));
      svg.appendChild(sv("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
      for (let t = 0; t <= 4; t++) {
        const v = lo + ((hi - lo) * t) / 4;
        svg.appendChild(sv("text", { x: 2, y: Y(opts.log ? Math.pow(10, v) : v) + 3 }, opts.log ? fmt(Math.pow(10, v)) : fmtValue(Number(v.toPrecision(4)))));
      }
      const labels = opts.steps || [];
      for (let k = 0; k < steps; k += Math.max(1, Math.ceil(steps / 10)))
        svg.appendChild(sv("text", { x: X(k) - 3, y: H - 10 }, String(labels[k] !== undefined ? labels[k] : k)));
      series.forEach((s) => {
        const pts = [];
        s.values.forEach((v, k) => { const n = num(v); if (n !== null && Number.isFinite(n) && (!opts.log || n > 0)) pts.push(X(k) + "," + Y(n)); });
        svg.appendChild(sv("polyline", { points: pts.join(" "), class: s.cls }));
        s.values.forEach((v, k) => {
          const n = num(v);
          if (n === null || !Number.isFinite(n) || (opts.log && n <= 0)) return;
          const c = sv("circle", { cx: X(k), cy: Y(n), r: 2.5, fill: s.color });
          c.appendChild(sv("title", null, s.label + " step " + (labels[k] !== undefined ? labels[k] : k) + ": " + fmtValue(n)));
          svg.appendChild(c);
        });
      });
      series.forEach((s, k) => svg.appendChild(sv("text", { x: W - R - 60, y: TOP + 10 + 12 * k, fill: s.color }, "— " + s.label)));
      return svg;
    }
    function heatmap(rows, columns, value, onCell) {
      const CW = Math.max(8, Math.min(28, Math.floor(900 / Math.max(1, columns.length)))), RH = 14, L = 230, TOP = 60;
      const svg = sv("svg", { width: L + columns.length * CW + 10, height: TOP + rows.length * RH + 10 });
      columns.forEach((c, j) => {
        if (columns.length > 40 && j % Math.ceil(columns.length / 40)) return;
        svg.appendChild(sv("text", { x: L + j * CW + 3, y: TOP - 4, transform: "rotate(-60 " + (L + j * CW + 3) + " " + (TOP - 4) + ")" }, cut(c, 24)));
      });
      rows.forEach((r, i) => {
        svg.appendChild(sv("text", { x: 0, y: TOP + i * RH + 11 }, cut(r, 36)));
        columns.forEach((c, j) => {
          const v = value(i, j);
          const cell = sv("rect", { x: L + j * CW, y: TOP + i * RH, width: CW, height: RH, class: "cell",
            fill: v === null ? "#f2f4f7" : errColor(v), "data-row": i, "data-col": j });
          cell.appendChild(sv("title", null, r + " · " + c + ": " + fmt(v)));
          if (onCell) cell.addEventListener("click", () => onCell(i, j));
          svg.appendChild(cell);
        });
      });
      return svg;
    }
    const panelBox = el("aside", { cls: "panel", id: "panel" }, el("p", { cls: "muted", text: "Click a cell to see its metrics." }));
    function showMetrics(title, sub, metrics) {
      panelBox.replaceChildren();
      appendAll(panelBox, [el("h3", { text: title }), el("div", { cls: "muted", text: sub })]);
      const m = metricsTable(metrics, "A vs B");
      if (m) appendAll(panelBox, m);
      else panelBox.appendChild(el("p", { cls: "muted", text: "not measured" }));
    }
    builders.training = (host) => {
      const steps = T.steps || [];
      const labels = steps.map((s) => s.step);
      const charts = el("div", { cls: "charts" });
      charts.appendChild(chartBox("loss per step: A vs B", lineChart([
        { label: "A", values: steps.map((s) => s.loss_a), cls: "line-a", color: "#2f5fd0" },
        { label: "B", values: steps.map((s) => s.loss_b), cls: "line-b", color: "#d9480f" }], { steps: labels })));
      charts.appendChild(chartBox("|loss A − loss B| per step (log)", lineChart([
        { label: "|ΔA−B|", values: steps.map((s) => s.loss_diff), cls: "line-a", color: "#2f5fd0" }], { steps: labels, log: true })));
      const area = el("div", { cls: "graph-area", style: "grid-template-columns: 1fr 360px; height: auto" });
      const left = el("div");
      left.appendChild(charts);
      for (const section of T.sections || []) {
        left.appendChild(chartBox(section.title + " (max |a−b| per step, log colour)", heatmap(section.rows,
          labels.map((s) => "step " + s), (i, j) => num(section.values[i][j]),
          (i, j) => showMetrics(section.rows[i], section.title + " · step " + labels[j], section.metrics ? section.metrics[i][j] : null))));
      }
      area.appendChild(left);
      area.appendChild(panelBox);
      host.appendChild(area);
    };
    builders.steps = (host) => {
      const rows = T.steps || [];
      dataTable(host, [
        { label: "step", get: (r) => r.step, num: true },
        { label: "status", get: (r) => (r.ok ? "ok" : "FAIL") },
        { label: "loss A", get: (r) => r.loss_a, show: (r) => fmtValue(num(r.loss_a)), num: true },
        { label: "loss B", get: (r) => r.loss_b, show: (r) => fmtValue(num(r.loss_b)), num: true },
        { label: "|Δ loss|", get: (r) => r.loss_diff, show: (r) => fmt(r.loss_diff), num: true },
        { label: "worst forward", get: (r) => r.worst_forward || "" },
        { label: "worst gradient", get: (r) => r.worst_grad || "" },
        { label: "worst weight", get: (r) => r.worst_weight || "" },
      ], rows, { placeholder: "filter steps", isFailing: (r) => !r.ok });
    };
    builders.layers = (host) => {
      const rows = T.layers || [];
      dataTable(host, [
        { label: "layer A", get: (r) => where(r.a) }, { label: "layer B", get: (r) => where(r.b) },
        { label: "class", get: (r) => r.class || "" },
        { label: "worst forward", get: (r) => r.forward, show: (r) => fmt(r.forward), num: true },
        { label: "worst gradient", get: (r) => r.grad, show: (r) => fmt(r.grad), num: true },
        { label: "first failing step", get: (r) => (r.first_step === null || r.first_step === undefined ? "" : r.first_step) },
      ], rows, { placeholder: "filter layers", isFailing: (r) => r.first_step !== null && r.first_step !== undefined,
                 extra: [download("layer_map.json", D.layer_map || [])] });
    };
    const first = document.querySelector("#tabs .tab");
    if (first) showTab(first.dataset.tab);
  }

  document.documentElement.setAttribute("data-ready", "true");
  window.__padiffReadyMs = performance.now();
})();
