/* padiff-ir report, part 4 of 10: laying a pane out with dagre (vendored, inlined before
 * part 1) and drawing it as SVG: boxes sized to their labels, module frames with horizontal
 * labels, edges along dagre's routes. */
  const COMPOUND_MAX = 250; // boxes plus frames
  function longestPathRanks(g) {  // dagre's "longest-path" ranker without its recursion
    const pending = new Map(), ready = [];    // (a chain of thousands of ops overflows it)
    for (const v of g.nodes()) {
      const n = (g.outEdges(v) || []).length;
      pending.set(v, n);
      if (!n) ready.push(v);
    }
    while (ready.length) {
      const v = ready.pop();
      let rank = Infinity;
      for (const e of g.outEdges(v) || []) rank = Math.min(rank, g.node(e.w).rank - g.edge(e).minlen);
      g.node(v).rank = rank === Infinity ? 0 : rank;
      for (const e of g.inEdges(v) || []) {
        const left = pending.get(e.v) - 1;
        pending.set(e.v, left);
        if (!left) ready.push(e.v);
      }
    }
  }
  Object.assign(Pane.prototype, {
    layout() {
      const units = new Map();
      const unitOf = new Array(this.nodes.length);
      for (let i = 0; i < this.nodes.length; i++) {
        const key = this.unitKey(i);
        let u = units.get(key);
        if (!u) {
          u = { key, nodes: [], order: units.size, kind: { m: "module", f: "fold", n: "op" }[key[0]] };
          if (u.kind === "op") { u.index = i; u.path = this.nodes[i].module; } else u.path = key.slice(2);
          units.set(key, u);
        }
        u.nodes.push(i);
        unitOf[i] = u;
      }
      const list = Array.from(units.values());
      for (const u of list) this.measure(u);
      this.fitFrameLabels(list);
      // dagre keeps each module's boxes together (compound graph) up to COMPOUND_MAX boxes and frames;
      // past that its cost grows too fast, and frames are drawn around where the boxes land
      const framed = new Set();
      for (const u of list) for (const p of this.frameParents(u)) framed.add(p);
      const compound = list.length + framed.size <= COMPOUND_MAX, big = list.length > 400;
      const g = new dagre.graphlib.Graph({ compound });
      g.setGraph({ rankdir: "TB", nodesep: 20, ranksep: compound ? 28 : 44, edgesep: 8, marginx: compound ? 12 : 40,
        marginy: compound ? 12 : 64, ranker: big ? longestPathRanks : "network-simplex", acyclicer: big ? "greedy" : undefined });
      g.setDefaultEdgeLabel(() => ({}));
      const clusters = new Set();
      for (const u of list) {
        g.setNode(u.key, { width: u.w, height: u.h });
        const frames = this.frameParents(u);
        frames.forEach((p, k) => {
          if (!clusters.has(p)) {
            clusters.add(p);
            if (compound) g.setNode("c:" + p, {});
            if (compound && k) g.setParent("c:" + p, "c:" + frames[k - 1]);
          }
        });
        if (compound && frames.length) g.setParent(u.key, "c:" + frames[frames.length - 1]);
      }
      const edges = new Map();
      for (const [s, t] of this.edges) {
        const U = unitOf[s], V = unitOf[t];
        if (!U || !V || U === V) continue;
        const key = U.key + "\u0000" + V.key;
        if (edges.has(key)) continue;
        edges.set(key, { U, V });
        g.setEdge(U.key, V.key);
      }
      dagre.layout(g);
      for (const u of list) {
        const n = g.node(u.key);
        u.px = n.x - u.w / 2;
        u.py = n.y - u.h / 2;
      }
      for (const e of edges.values()) e.points = g.edge(e.U.key, e.V.key).points || [];
      this.frames = (compound ? Array.from(clusters).map((p) => {
        const n = g.node("c:" + p);
        return { path: p, x: n.x - n.width / 2, y: n.y - n.height / 2, w: n.width, h: n.height };
      }) : this.boundingFrames(list, clusters)).sort((x, y) => x.path.split(".").length - y.path.split(".").length);
      const graph = g.graph();
      this.units = list;
      this.unitMap = units;
      this.unitEdges = Array.from(edges.values());
      this.width = Math.ceil(graph.width || 100);
      this.height = Math.ceil(graph.height || 100);
    },
    boundingFrames(list, clusters) {  // frames around their boxes, outer ones padded more
      const boxes = new Map();
      for (const u of list) for (const p of this.frameParents(u)) {
        const b = boxes.get(p) || { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
        b.x0 = Math.min(b.x0, u.px); b.y0 = Math.min(b.y0, u.py);
        b.x1 = Math.max(b.x1, u.px + u.w); b.y1 = Math.max(b.y1, u.py + u.h);
        boxes.set(p, b);
      }
      const level = new Map();
      for (const p of Array.from(clusters).sort((x, y) => y.split(".").length - x.split(".").length)) {
        const own = level.get(p) || 1, up = p.slice(0, Math.max(0, p.lastIndexOf(".")));
        level.set(p, own);
        if (boxes.has(up)) level.set(up, Math.max(level.get(up) || 1, own + 1));
      }
      return Array.from(boxes, ([p, b]) => {
        const lv = Math.min(level.get(p), 4), pad = 4 + 5 * lv, top = 4 + 13 * lv;
        return { path: p, x: b.x0 - pad, y: b.y0 - top, w: b.x1 - b.x0 + 2 * pad, h: b.y1 - b.y0 + top + pad };
      });
    },
    frameText(path) {
      return (this.repeats.has(path) ? "⊟ " : "⊖ ") + path.split(".").pop() + " · " + (this.view.modules[path] || "");
    },
    fitFrameLabels(list) {  // a frame around one box is as wide as that box: widen it to the label
      const inside = new Map(), seen = new Set(), innermost = new Map();
      const count = (p) => inside.set(p, (inside.get(p) || 0) + 1);
      for (const u of list) {
        const frames = this.frameParents(u);
        if (!frames.length) continue;
        innermost.set(u, frames[frames.length - 1]);
        count(frames[frames.length - 1]);
        for (let k = 1; k < frames.length; k++) if (!seen.has(frames[k])) {
          seen.add(frames[k]);
          count(frames[k - 1]);
        }
      }
      for (const [u, p] of innermost) if (inside.get(p) === 1)
        u.w = Math.max(u.w, Math.min(320, Math.round(this.frameText(p).length * 5.9 + 4)));
    },
    measure(u) {
      if (u.kind === "op") {
        const n = this.nodes[u.index];
        u.line1 = (n.domain ? n.domain + "::" : "") + n.op;
        const noise = this.noiseOf(u);
        u.line2 = shapeLabel(n.shape, this.runShape[u.index]) + (noise ? "  " + noiseText(noise) :
          this.err[u.index] !== null ? "  " + fmt(this.err[u.index]) : "");
        u.w = fitWidth([u.line1, u.line2], 96, 230);
        u.h = 36;
      } else if (u.kind === "module") {
        const info = this.moduleInfo(u.path);
        u.line1 = u.path.split(".").pop() + " · " + (this.view.modules[u.path] || "");
        u.line2 = u.nodes.length + (this.view.kind === "modules" ? " outputs · " : " ops · ") +
          (info.status || "max") + " " + (info.noise ? noiseText(info.noise) : fmt(info.err));
        u.w = fitWidth([u.line1, u.line2], 130, 250, 22);
        u.h = 40;
      } else {
        const kids = this.repeats.get(u.path);
        const first = kids[0].split(".").pop(), last = kids[kids.length - 1].split(".").pop();
        u.line1 = u.path.split(".").pop() + "." + first + "‥" + last + " · " +
          (this.view.modules[kids[0]] || "") + " ×" + kids.length;
        u.line2 = "identical blocks, folded: a cell opens one";
        u.cell = Math.max(3, Math.min(14, Math.floor(360 / kids.length)));
        u.w = Math.max(fitWidth([u.line1, u.line2], 180, 300, 22), kids.length * u.cell + 16);
        u.h = 58;
      }
    },

    render() {
      this.layout();
      const W = this.width, H = this.height;
      const svg = sv("svg", { width: W * this.zoom, height: H * this.zoom, viewBox: "0 0 " + W + " " + H,
        "data-side": this.side });
      const gFrames = sv("g"), gEdges = sv("g"), gUnits = sv("g");
      this.frameEls = new Map();
      svg.appendChild(gFrames); svg.appendChild(gEdges); svg.appendChild(gUnits);
      for (const f of this.frames) {
        const res = moduleResult(this.side, f.path);
        const foldable = this.repeats.has(f.path);
        const frame = sv("g", { class: "frame" + (res && res.status === "culprit" ? " culprit" : ""), "data-path": f.path,
          "data-side": this.side });
        this.frameEls.set(f.path, frame);
        frame.appendChild(sv("rect", { x: f.x, y: f.y, width: f.w, height: f.h, rx: 6 }));
        const text = this.frameText(f.path);
        const label = sv("text", { x: f.x + 5, y: f.y + 11, class: "frame-label", "data-path": f.path },
          cut(text, Math.max(3, Math.floor((f.w - 8) / 5.8))));
        label.appendChild(sv("title", null, f.path + " (" + (this.view.modules[f.path] || "") + "): click to " +
          (foldable ? "fold its blocks" : "collapse")));
        frame.appendChild(label);
        gFrames.appendChild(frame);
      }
      for (const e of this.unitEdges) {
        const pts = e.points;
        if (!pts.length) continue;
        let d = "M" + pts[0].x + "," + pts[0].y;
        for (let k = 1; k < pts.length - 1; k++) {
          const mx = (pts[k].x + pts[k + 1].x) / 2, my = (pts[k].y + pts[k + 1].y) / 2;
          d += " Q" + pts[k].x + "," + pts[k].y + " " + mx + "," + my;
        }
        if (pts.length > 1) d += " L" + pts[pts.length - 1].x + "," + pts[pts.length - 1].y;
        gEdges.appendChild(sv("path", { d, class: "edge" }));
      }
      for (const p of groupPairs) {  // N:M groups drawn as one dashed outline
        const members = (pairNodes[this.side].get(p) || []).map((i) => this.unitMap.get(this.unitKey(i)));
        const distinct = Array.from(new Set(members));
        if (distinct.length < 2 || distinct.some((u) => u.kind !== "op")) continue;
        const x0 = Math.min(...distinct.map((u) => u.px)) - 5, y0 = Math.min(...distinct.map((u) => u.py)) - 5;
        const x1 = Math.max(...distinct.map((u) => u.px + u.w)) + 5, y1 = Math.max(...distinct.map((u) => u.py + u.h)) + 5;
        const r = sv("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, rx: 8, class: "group-frame" });
        r.appendChild(sv("title", null, "N:M group #" + p + ": " + pairs[p].a.length + " tensor(s) of A ↔ " + pairs[p].b.length + " of B"));
        gFrames.appendChild(r);
      }
      this.unitEls = new Map();
      for (const u of this.units) gUnits.appendChild(this.drawUnit(u));
      this.scroll.replaceChildren(svg);
      this.svg = svg;
      this.applyMarks();
      drawMinimap(this);
    },

    drawUnit(u) {
      const g = sv("g", { class: "unit", transform: "translate(" + u.px + "," + u.py + ")",
        "data-key": u.key, "data-side": this.side, "data-kind": u.kind, "data-module": u.path });
      let fill, tip;
      const status = this.statusOf(u);
      if (status) g.classList.add(status);
      const noise = this.noiseOf(u);
      if (noise) { g.classList.add("noise-" + noise.level); g.setAttribute("data-noise", noise.level); }
      if (u.kind === "op") {
        const n = this.nodes[u.index];
        g.setAttribute("data-id", n.id);
        fill = noise ? noiseColor(noise.ratio, NOISE.far) : errColor(this.err[u.index]);
        if (groupPairs.has(this.pairOf[u.index])) g.classList.add("group");
        tip = n.op + " " + n.id + "\n" + where(n.module) + "\nmax abs " + fmt(this.err[u.index]) +
          (noise ? " (" + noiseText(noise) + ")" : "") + (status ? "\n" + status : "") + (this.unmatched[u.index] !== undefined ? "\nunmatched: " + this.unmatched[u.index] : "");
      } else if (u.kind === "module") {
        g.setAttribute("data-id", u.path);
        fill = noise ? noiseColor(noise.ratio, NOISE.far) : errColor(this.moduleInfo(u.path).err);
        tip = u.path + " (" + (this.view.modules[u.path] || "") + ")\n" + (status || "") +
          (noise ? " · outputs " + noiseText(noise) + (noise.own !== undefined ? ", own " + noiseText({ ratio: noise.own }) : "") : "") +
          "\n" + u.nodes.length +
          " ops; double-click or ⊕ to expand";
      } else {
        g.setAttribute("data-id", u.path);
        fill = "#f8fafc";
        tip = u.path + ": " + this.repeats.get(u.path).length + " blocks of the same structure; a cell per block " +
          "(its worst error); click a cell or ⊕ to unfold";
      }
      const chars = Math.floor((u.w - (u.kind === "op" ? 12 : 32)) / CHAR_W);
      g.appendChild(sv("rect", { class: "box", width: u.w, height: u.h, rx: u.kind === "op" ? 4 : 7, fill }));
      g.appendChild(sv("text", { x: 7, y: 14 }, cut(u.line1, chars)));
      g.appendChild(sv("text", { x: 7, y: 29, class: "sub" }, cut(u.line2, chars + 3)));
      if (u.kind !== "op") {
        const t = sv("g", { class: "toggle", transform: "translate(" + (u.w - 20) + ",4)", "data-path": u.path,
          "data-fold": u.kind === "fold" ? "1" : "" });
        t.appendChild(sv("rect", { width: 16, height: 16, rx: 3 }));
        t.appendChild(sv("text", { x: 4, y: 13 }, "+"));
        t.appendChild(sv("title", null, (u.kind === "fold" ? "unfold " : "expand ") + u.path));
        g.appendChild(t);
      }
      if (u.kind === "fold") {
        const strip = sv("g", { class: "strip", transform: "translate(8,36)" });
        this.repeats.get(u.path).forEach((child, k) => {
          const info = this.moduleInfo(child);
          const cell = sv("rect", { class: "cell " + this.statusOf({ kind: "module", path: child, nodes: [] }) +
            (info.noise ? " noise-" + info.noise.level : ""), x: k * u.cell, width: u.cell - 1, height: 14,
            fill: info.noise ? noiseColor(info.noise.ratio, NOISE.far) : errColor(info.err), "data-path": child });
          cell.appendChild(sv("title", null, child + ": " + (info.status || "max") + " " +
            (info.noise ? noiseText(info.noise) : fmt(info.err))));
          strip.appendChild(cell);
        });
        g.appendChild(strip);
      }
      g.appendChild(sv("title", null, tip));
      this.unitEls.set(u.key, g);
      return g;
    },
  });
