/* padiff-ir report, part 6 of 10: the match view: the graphs tab, the tables of pairs,
 * layers and unmatched ops, and the summary buttons. */
function initMatch() {
  initMatchState();

  // -- graphs tab ----------------------------------------------------------------------------
  function buildGraphs(host) {
    const hasGraphs = !!(graphs.a || graphs.b);
    const search = el("input", { type: "search", id: "search", placeholder: "search module path or op (e.g. blocks.3.attn, Softmax)" });
    const results = el("div", { cls: "search-results", hidden: "hidden" });
    const swatch = (cls, text, tip) => el("span", { cls: "key", title: tip }, [
      sv("svg", { width: 18, height: 12, class: "swatch-svg" }, sv("g", { class: "swatch-unit " + cls },
        sv("rect", { class: "box", x: 1, y: 1, width: 16, height: 10, rx: 2, fill: cls === "unmatched" ? "#eceff3" : "#fbe3d6" }))),
      text]);
    const scale = NOISE ? ["error / noise bound: 0.01", "×" + NOISE.far + " and more"] : ["max |a−b|: 1e-10", "1"];
    const legend = el("div", { cls: "legend", id: "legend", "data-scale": NOISE ? "noise" : "error" }, [
      scale[0], el("canvas", { cls: "scale", width: 160, height: 10, id: "scale",
        title: NOISE ? "tolerance='auto': modules by their outputs' RMSE over their measured noise bound; ops by " +
          "their largest difference over their module's largest rounding error; green within the noise, amber " +
          "out of it, red more than " + NOISE.far + "x out" : "" }), scale[1],
      swatch("culprit", "culprit", "its own computation differs (B fed A's inputs still differs)"),
      swatch("contains-culprit", "holds a culprit", "a module with a culprit inside"),
      swatch("inherited", "inherited", "differs only because its inputs differ"),
      swatch("accumulated", "accumulated", "rounding accumulated over many ops, no culprit"),
      swatch("failing", "differs", "out of tolerance; its own error (apart from its inputs') was not measured"),
      swatch("agree", "agrees (dimmed)", "within tolerance"),
      swatch("unmatched", "unmatched", "no counterpart on the other side"),
      swatch("not-comparable", "not comparable", "paired, but laid out differently (a fused layout)"),
      swatch("group", "N:M group", "several ops on one side pair with one or several on the other"),
    ]);
    const note = el("span", { cls: "muted", id: "graph-note" });
    const buttons = [
      ["Collapse all", () => { for (const s of SIDES) if (STATE.panes[s]) STATE.panes[s].collapseAll(); renderAll(); }],
      ["Expand all", () => {
        const capped = SIDES.filter((s) => STATE.panes[s] && !STATE.panes[s].expandAll());
        renderAll();
        note.textContent = capped.length ? "Too many ops to draw at once: opened as many levels as fit; " +
          "expand the modules you need one by one." : "";
      }],
      ["Reset", () => { for (const s of SIDES) if (STATE.panes[s]) STATE.panes[s].autoExpand(LIMIT_UNITS); renderAll(); }],
      ["−", () => zoomAll(1 / 1.25)], ["+", () => zoomAll(1.25)],
      ["SVG", exportSvg], ["PNG", exportPng],
    ].map(([text, fn]) => el("button", { type: "button", text, on: { click: fn }, "data-action": text }));
    host.appendChild(el("div", { cls: "toolbar" }, [search, results].concat(buttons, [note, legend])));
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
      watchPane(pane);
    }
    area.appendChild(panel);
    renderAll();
    const canvas = document.getElementById("scale");
    if (canvas) {
      const ctx = canvas.getContext("2d");
      for (let x = 0; x < 160; x++) {
        ctx.fillStyle = NOISE ? noiseColor(Math.pow(10, -2 + (2 + Math.log10(NOISE.far) + 1) * x / 159), NOISE.far)
          : errColor(Math.pow(10, -10 + (10 * x) / 159));
        ctx.fillRect(x, 0, 1, 10);
      }
    }
    let timer = null;
    search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => runSearch(search.value, results), 150); });
    search.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") { const first = results.querySelector("div"); if (first) first.click(); }
      if (ev.key === "Escape") { search.value = ""; runSearch("", results); }
    });
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
    const noise = (r) => (NOISE ? NOISE.pairs[r._i] || null : null);
    const status = (r) => (noise(r) ? { ok: "ok", warn: "warn", fail: "FAIL" }[noise(r).level] : m(r).ok ? "ok" : "FAIL");
    dataTable(host, [
      { label: "#", get: (r) => r._i, num: true },
      { label: "status", get: status },
      ...(NOISE ? [{ label: "× noise", get: (r) => (noise(r) ? noise(r).ratio : null), show: (r) => noiseText(noise(r)), num: true }] : []),
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
    ], rows, { placeholder: "filter pairs (module, op, tensor)", isFailing: (r) => status(r) !== "ok", onClick: (r) => selectPair(r._i) });
  };
  builders.layers = (host) => {
    const rows = (D.layer_map || []).map((e) => Object.assign({ _res: moduleResult("a", e.a) }, e));
    const res = (r) => r._res || {};
    const noiseOfA = (r) => (NOISE ? NOISE.modules.a[r.a] || null : null);
    dataTable(host, [
      { label: "module A", get: (r) => where(r.a) }, { label: "class A", get: (r) => r.class_a },
      { label: "module B", get: (r) => where(r.b) }, { label: "class B", get: (r) => r.class_b },
      { label: "status", get: (r) => res(r).status || "-" },
      { label: "output", get: (r) => metricOf(res(r).output), show: (r) => fmt(metricOf(res(r).output)), num: true },
      { label: "own", get: (r) => metricOf(res(r).own), show: (r) => fmt(metricOf(res(r).own)), num: true },
      ...(NOISE ? [
        { label: "output × noise", get: (r) => (noiseOfA(r) ? noiseOfA(r).ratio : null), show: (r) => noiseText(noiseOfA(r)), num: true },
        { label: "own × noise", get: (r) => (noiseOfA(r) && noiseOfA(r).own !== undefined ? noiseOfA(r).own : null),
          show: (r) => (noiseOfA(r) && noiseOfA(r).own !== undefined ? noiseText({ ratio: noiseOfA(r).own }) : "-"), num: true },
      ] : []),
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
  builders.batches = (host) => {
    const info = D.batches || { rows: [] };
    host.appendChild(el("p", { cls: "muted", text: "The graphs and tables show batch " + info.shown +
      " (the first that diverges, else the first); every batch ran through the same export." }));
    dataTable(host, [
      { label: "batch", get: (r) => r.batch, num: true }, { label: "verdict", get: (r) => r.verdict },
      { label: "worst module A", get: (r) => where(r.worst_module) }, { label: "op", get: (r) => r.worst_op },
      { label: "max abs", get: (r) => r.max_abs, show: (r) => fmt(r.max_abs), num: true },
      { label: "culprits", get: (r) => r.culprits.join(", ") },
      { label: "seconds", get: (r) => r.seconds, show: (r) => fmtValue(r.seconds), num: true },
    ], info.rows, { placeholder: "filter batches", isFailing: (r) => r.verdict !== "aligned" });
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
    const path = b.getAttribute("data-reveal-module"), partner = b.getAttribute("data-reveal-partner");
    const other = STATE.panes.b;
    const partners = partner !== null && other && other.hasModule(partner) ? [["module", partner]] : undefined;
    if (STATE.panes.a) select("a", "module", path, { partners });
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
