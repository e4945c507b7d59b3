/* padiff-ir report, part 3 of 10: one graph pane: which boxes one side's graph shows
 * (modules collapsible, identical numbered blocks folded into one box with an error strip,
 * one cell per block), their status, and clicks on them. Drawn by part 4. */
  const MAX_UNITS = 1200; // "Expand all" opens modules level by level up to this many boxes
  const FOLD_MIN = 2; // a container of at least this many identical numbered blocks folds
  const CHAR_W = 6.3; // px per character of the 11 px labels
  function fitWidth(texts, lo, hi, extra) {
    const n = Math.max.apply(null, texts.map((t) => String(t).length));
    return Math.max(lo, Math.min(hi, Math.round(n * CHAR_W + 16 + (extra || 0))));
  }
  function shapeLabel(shape, run) {  // the run's shape where the export's dims are symbolic
    const dims = run || shape;
    return dims ? "[" + dims.map((d) => (typeof d === "number" ? d : "?")).join(", ") + "]" : "?";
  }
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
      this.frameEls = new Map();
      this.frames = [];
      this.anc = this.nodes.map((n) => prefixes(n.module));
      this.opCount = new Map();
      this.children = new Map([["", new Set()]]);
      const sigs = new Map();
      this.anc.forEach((list, i) => {
        for (let k = 0; k < list.length; k++) {
          const p = list[k];
          this.opCount.set(p, (this.opCount.get(p) || 0) + 1);
          const parent = k ? list[k - 1] : "";
          if (!this.children.has(parent)) this.children.set(parent, new Set());
          this.children.get(parent).add(p);
          if (!sigs.has(p)) sigs.set(p, [this.view.modules[p] || ""]);
          sigs.get(p).push(this.nodes[i].module.slice(p.length) + ":" + this.nodes[i].op);
        }
      });
      // containers whose children are numbered blocks of one structure: folded by default
      this.repeats = new Map();
      this.foldOf = new Map();
      for (const [parent, kids] of this.children) {
        const list = Array.from(kids);
        if (!parent || list.length < FOLD_MIN) continue;
        if (!list.every((p) => /^\d+$/.test(p.slice(parent.length + 1)))) continue;
        const first = sigs.get(list[0]).join("|");
        if (!list.every((p) => sigs.get(p).join("|") === first)) continue;
        list.sort((x, y) => Number(x.slice(parent.length + 1)) - Number(y.slice(parent.length + 1)));
        this.repeats.set(parent, list);
        for (const p of list) this.foldOf.set(p, parent);
      }
      this.folded = new Set(this.repeats.keys());
      const nodePair = (IDX.node_pair && IDX.node_pair[side]) || [];
      const unmatched = (IDX.node_unmatched && IDX.node_unmatched[side]) || {};
      this.runShape = (IDX.run_shape && IDX.run_shape[side]) || {};
      this.pairOf = this.nodes.map((_, i) => (nodePair[i] === undefined ? -1 : nodePair[i]));
      this.err = this.pairOf.map((p) => (p >= 0 ? metricOf(pairs[p].metrics) : null));
      this.failing = this.pairOf.map((p) => p >= 0 && !pairs[p].metrics.ok && !pairs[p].not_comparable);
      this.unmatched = this.nodes.map((_, i) => unmatched[String(i)]);
      this.pathErr = new Map();
      this.pathFailing = new Set();
      this.anc.forEach((list, i) => { for (const p of list) {
        if (this.err[i] !== null && !(this.pathErr.get(p) >= this.err[i])) this.pathErr.set(p, this.err[i]);
        if (this.failing[i]) this.pathFailing.add(p);
      } });
      const what = view.kind === "modules" ? " module outputs in run order" : " ops";
      this.title = el("div", { cls: "pane-title", text: sideLabel(side) + " — " + this.nodes.length + what });
      this.scroll = el("div", { cls: "pane-scroll", "data-side": side });
      this.mini = el("canvas", { cls: "minimap", "data-side": side, width: 150, height: 150 });
      host.appendChild(el("div", { cls: "pane", "data-side": side }, [this.title, this.scroll, this.mini]));
      this.scroll.addEventListener("click", (ev) => this.onClick(ev));
      this.scroll.addEventListener("dblclick", (ev) => this.onDblClick(ev));
    }
    unitKey(i, expanded) {
      expanded = expanded || this.expanded;
      for (const p of this.anc[i]) {
        const box = this.foldOf.get(p);
        if (box !== undefined && this.folded.has(box)) return "f:" + box;
        if (!expanded.has(p)) return "m:" + p;
      }
      return "n:" + i;
    }
    countUnits(expanded) {
      const keys = new Set();
      for (let i = 0; i < this.nodes.length; i++) keys.add(this.unitKey(i, expanded));
      return keys.size;
    }
    autoExpand(limit, unfolded) {
      this.folded = unfolded ? new Set() : new Set(this.repeats.keys());
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
        for (const p of frontier) for (const c of this.children.get(p) || [])
          if (!this.folded.has(this.foldOf.get(c))) next.push(c); // folded blocks stay closed
        frontier = next;
      }
      this.expanded = expanded;
    }
    expandAll() {  // every module open, unless that is more boxes than a drawing can hold
      this.folded = new Set();
      this.expanded = new Set(this.opCount.keys());
      if (this.countUnits(this.expanded) <= MAX_UNITS) return true;
      this.autoExpand(MAX_UNITS, true);
      return false;
    }
    collapseAll() { this.expanded = new Set(); this.folded = new Set(this.repeats.keys()); }
    hasModule(path) { return path === "" || this.opCount.has(path); }
    isExpanded(path) { return path === "" || this.expanded.has(path); }
    unfoldAlong(list) {
      let changed = false;
      for (const p of list) {
        const box = this.foldOf.get(p);
        if (box !== undefined && this.folded.delete(box)) changed = true;
      }
      return changed;
    }
    setFolded(path, on) {
      if (!this.repeats.has(path)) return false;
      if (on) this.folded.add(path); else this.folded.delete(path);
      if (!on) this.expanded.add(path);
      return true;
    }
    setExpanded(path, on) {
      if (!path) return;
      if (on) { for (const p of prefixes(path)) this.expanded.add(p); this.unfoldAlong(prefixes(path)); }
      else for (const p of Array.from(this.expanded)) if (p === path || p.startsWith(path + ".")) this.expanded.delete(p);
    }
    expandAllOf(list) {
      let changed = this.unfoldAlong(list);
      for (const p of list) if (!this.expanded.has(p)) { this.expanded.add(p); changed = true; }
      return changed;
    }
    revealNode(i) { return this.expandAllOf(this.anc[i]); }
    revealModule(path) {
      const list = prefixes(path);
      const unfolded = this.unfoldAlong(list);
      list.pop();
      return this.expandAllOf(list) || unfolded;
    }
    moduleInfo(path) {
      const res = moduleResult(this.side, path);
      const err = res && res.output ? metricOf(res.output) : (this.pathErr.has(path) ? this.pathErr.get(path) : null);
      const failing = res && res.output ? !res.output.ok : this.pathFailing.has(path);
      const noise = NOISE ? NOISE.modules[this.side][path] || null : null;
      return { res, err, failing, status: res ? res.status : "", noise };
    }
    noiseOf(u) {  // tolerance="auto": the unit's error in units of its noise (null: none)
      if (!NOISE) return null;
      if (u.kind === "op") { const p = this.pairOf[u.index]; return p >= 0 ? NOISE.pairs[p] || null : null; }
      if (u.kind === "module") return this.moduleInfo(u.path).noise;
      let worst = null;  // a folded group: its worst block
      for (const c of this.repeats.get(u.path)) {
        const n = this.moduleInfo(c).noise;
        if (n && (!worst || (n.ratio === "inf" ? Infinity : n.ratio) > (worst.ratio === "inf" ? Infinity : worst.ratio))) worst = n;
      }
      return worst;
    }
    statusOf(u) {  // the style class: culprit, inherited, accumulated, agree, unmatched...
      if (u.kind === "op") {
        const i = u.index, p = this.pairOf[i];
        if (this.unmatched[i] !== undefined) return "unmatched";
        if (p < 0) return "";
        const pair = pairs[p];
        if (pair.not_comparable) return "not-comparable";
        const noise = NOISE ? NOISE.pairs[p] : null;
        if (noise) {  // tolerance="auto": within its noise it agrees, else its module's judgment
          if (noise.level === "ok") return "agree";
          const res = moduleResult(this.side, this.nodes[i].module);
          return res && res.status && !["ok", "unmeasured"].includes(res.status) ? res.status : "failing";
        }
        if (pair.metrics.ok) return "agree";
        if (pair.own) return pair.own.ok ? "inherited" : "culprit";
        const res = moduleResult(this.side, this.nodes[i].module);
        return res && res.status === "culprit" ? "culprit" : "failing";
      }
      if (u.kind === "fold") {
        const kids = this.repeats.get(u.path).map((c) => this.statusOf({ kind: "module", path: c, nodes: [] }));
        if (kids.includes("culprit") || kids.includes("contains-culprit")) return "contains-culprit";
        for (const s of ["inherited", "accumulated", "failing"]) if (kids.includes(s)) return s;
        return kids.every((s) => s === "agree") ? "agree" : "";
      }
      const info = this.moduleInfo(u.path);
      if (u.nodes.length && u.nodes.every((i) => this.unmatched[i] !== undefined)) return "unmatched";
      if (info.status && info.status !== "ok" && info.status !== "unmeasured") return info.status;
      if (info.noise) return info.noise.level === "ok" ? "agree" : "failing";  // tolerance="auto"
      if (info.failing) return "failing";
      return info.err !== null || info.status === "ok" ? "agree" : "";
    }
    frameParents(u) {  // the expanded modules drawn as frames around the unit
      const list = prefixes(u.path);
      if (u.kind !== "op") list.pop();
      return list.filter((p) => this.expanded.has(p));
    }


    applyMarks() {
      for (const g of this.unitEls.values()) g.classList.remove("selected", "partner", "hit");
      for (const g of this.frameEls.values()) g.classList.remove("selected", "partner");
      const sel = STATE.sel;
      const mark = (key, cls) => {
        const g = key === null ? null : this.unitEls.get(key);
        if (g) g.classList.add(cls);
      };
      const markModule = (path, cls) => {  // an expanded module is marked on its frame
        const key = this.keyOf("module", path);
        if (key !== null) mark(key, cls);
        else if (this.frameEls.has(path)) this.frameEls.get(path).classList.add(cls);
      };
      if (sel) {
        const marks = sel.side === this.side ? [[sel.kind, sel.id, "selected"]]
          : partnersOf(sel).map(([kind, id]) => [kind, id, "partner"]);
        for (const [kind, id, cls] of marks) {
          if (kind === "module") markModule(id, cls); else mark(this.keyOf(kind, id), cls);
        }
      }
      for (const key of this.hits) mark(key, "hit");
    }
    keyOf(kind, id) {
      if (kind === "op") return this.unitKey(id);
      for (const p of prefixes(id)) {
        const box = this.foldOf.get(p);
        if (box !== undefined && this.folded.has(box)) return "f:" + box;
        if (!this.expanded.has(p)) return "m:" + p;
      }
      return null; // an expanded module is drawn as a frame
    }
    unitAt(kind, id) {
      const key = this.keyOf(kind, id);
      let u = key ? this.unitMap.get(key) : null;
      if (!u && kind === "module") u = this.units.find((v) => v.path === id || v.path.startsWith(id + "."));
      return u || null;
    }
    scrollTo(kind, id) {
      const f = kind === "module" && this.keyOf(kind, id) === null ? this.frames.find((v) => v.path === id) : null;
      if (f) { centreOn(this, f.x + f.w / 2, f.y + Math.min(f.h / 2, this.scroll.clientHeight / (3 * this.zoom))); return; }
      const u = this.unitAt(kind, id);
      if (u) centreOn(this, u.px + u.w / 2, u.py + u.h / 2);
    }
    onClick(ev) {
      const cell = ev.target.closest(".strip .cell");
      if (cell) { unfoldTo(this.side, cell.getAttribute("data-path")); return; }
      const toggle = ev.target.closest(".toggle");
      if (toggle) {
        const path = toggle.getAttribute("data-path");
        if (toggle.getAttribute("data-fold")) foldModule(this.side, path, false);
        else toggleModule(this.side, path, true);
        return;
      }
      const label = ev.target.closest(".frame-label");
      if (label) {
        const path = label.getAttribute("data-path");
        if (this.repeats.has(path)) foldModule(this.side, path, true);
        else toggleModule(this.side, path, false);
        return;
      }
      const g = ev.target.closest(".unit");
      if (!g) return;
      const key = g.getAttribute("data-key");
      if (key.startsWith("n:")) select(this.side, "op", Number(key.slice(2)), { reveal: false });
      else select(this.side, "module", key.slice(2), { reveal: false });
    }
    onDblClick(ev) {
      const g = ev.target.closest(".unit");
      if (!g) return;
      if (g.getAttribute("data-kind") === "module") toggleModule(this.side, g.getAttribute("data-module"), true);
      if (g.getAttribute("data-kind") === "fold") foldModule(this.side, g.getAttribute("data-module"), false);
    }
  }
