/* padiff-ir report, part 3 of 7: one graph pane (an SVG drawing of one side's graph,
 * modules collapsible). */
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
      this.failing = this.pairOf.map((p) => p >= 0 && !pairs[p].metrics.ok && !pairs[p].not_comparable);
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
