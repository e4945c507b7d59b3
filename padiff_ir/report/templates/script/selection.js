/* padiff-ir report, part 5 of 10: selecting ops and modules in both panes, and the
 * details panel. */
  const STATE = { sel: null, panes: {} };
  function partnersOf(sel) {
    if (sel.partners) return sel.partners; // given by the caller (a culprit's call site)
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
    const partner = partnerModule(side, path);
    const other = STATE.panes[OTHER[side]];
    if (partner !== undefined && other && other.hasModule(partner)) other.setExpanded(partner, on);
    renderAll();
    if (on) select(side, "module", path, { reveal: false, keepScroll: true });
  }
  function partnerModule(side, path) {
    return IDX.module_partner && IDX.module_partner[side] ? IDX.module_partner[side][path] : undefined;
  }
  function foldModule(side, path, on) {  // fold (or unfold) a container's blocks, both sides
    STATE.panes[side].setFolded(path, on);
    const partner = partnerModule(side, path);
    const other = STATE.panes[OTHER[side]];
    if (partner !== undefined && other) other.setFolded(partner, on);
    renderAll();
    select(side, "module", path, { reveal: false, keepScroll: on });
  }
  function unfoldTo(side, path) {  // a cell of a fold's strip: open the blocks, select that one
    const pane = STATE.panes[side];
    const box = pane.foldOf.get(path);
    if (box !== undefined) pane.setFolded(box, false);
    const partner = box !== undefined ? partnerModule(side, box) : undefined;
    const other = STATE.panes[OTHER[side]];
    if (partner !== undefined && other) other.setFolded(partner, false);
    select(side, "module", path, { render: true });
  }
  function select(side, kind, id, opts) {
    opts = opts || {};
    STATE.sel = { side, kind, id, partners: opts.partners };
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
    syncPaused(() => {
      if (pane && !opts.keepScroll) pane.scrollTo(kind, id);
      if (other && partners.length) other.scrollTo(partners[0][0], partners[0][1]);
    });
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
      ["outputs", (n.out || []).join(", ")], ["shape", shapeText(n.shape)],
      ["shape as run", pane.runShape[i] ? shapeText(pane.runShape[i]) : null], ["dtype", n.dtype],
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
    if (pair.not_comparable) items.push(el("p", null, [el("span", { cls: "badge", text: "not comparable" }), " ",
      pair.not_comparable]));
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
    const buttons = [el("button", { type: "button", text: expanded ? "Collapse" : "Expand",
      on: { click: () => toggleModule(side, path, !expanded) } })];
    if (pane && pane.repeats.has(path)) {
      const folded = pane.folded.has(path);
      buttons.push(" ", el("button", { type: "button", text: folded ? "Unfold blocks" : "Fold blocks",
        on: { click: () => foldModule(side, path, !folded) } }));
    }
    out.push(el("p", null, buttons));
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
      const noise = D.noise && (D.noise.modules || []).find((n) => n.module_a === res.a);
      if (noise) {  // tolerance="auto": the errors in units of the module's measured noise
        out.push(el("h4", { text: "numerical noise (" + D.noise.method + ", " + D.noise.dtype + ")" }));
        const band = (label, f) => el("tr", { "data-noise": label }, [el("th", { text: label }),
          el("td", { cls: "num", text: f ? "RMSE " + fmt(f.error) + ", noise " + fmt(f.noise) : "-" }),
          el("td", { text: f ? (f.bound > 0 ? (f.error / f.bound).toFixed(1) + "x noise" : f.error ? "inf" : "0x") : "-" })]);
        out.push(el("table", null, el("tbody", null, [band("output", noise.output), band("own", noise.own)])));
      }
    }
    const pattern = path.replace(/(^|\.)\d+(?=\.|$)/g, "$1*") + ".";
    const layouts = Object.entries(D.layouts || {}).filter(([kind]) =>
      (side === "a" ? kind.split(" -> ")[0] : kind.split(" -> ")[1] || "").split("+").some((n) => n.startsWith(pattern)));
    if (layouts.length) {  // fused parameters of this module: the layout the probing found
      out.push(el("h4", { text: "parameter layouts" }));
      out.push(el("ul", null, layouts.map(([kind, chosen]) => el("li", { cls: "mono", "data-layout": kind,
        text: kind + ": " + (chosen.layout ? chosen.layout.name + "(" + Object.entries(chosen.layout)
          .filter(([k]) => k !== "name").map(([k, v]) => k + "=" + fmtValue(v)).join(", ") + ")" : "offset " + chosen.offset) }))));
    }
    const calls = (IDX.calls && IDX.calls[side] && IDX.calls[side][path]) || [];
    if (calls.length) {  // a layer called several times: one result per call
      out.push(el("h4", { text: "calls (" + calls.length + ")" }));
      out.push(el("table", null, el("tbody", null, calls.map((k) => { const m = modules[k];
        return el("tr", { "data-call": m[side] }, [el("th", { text: m[side] }), el("td", { text: m.status }),
          el("td", { cls: "num", text: "output " + fmt(metricOf(m.output)) }),
          el("td", { cls: "num", text: "own " + fmt(metricOf(m.own)) })]); }))));
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
