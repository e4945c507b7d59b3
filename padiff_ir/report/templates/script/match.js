/* padiff-ir report, part 5 of 7: the match view: the graphs tab, the tables of pairs,
 * layers and unmatched ops, and the summary buttons. */
function initMatch() {
  initMatchState();

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
