/* padiff-ir report, part 9 of 10: the auto_diff (training) view: steps, losses,
 * gradients, weights and optimizer states. */
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
