/* padiff-ir report, part 8 of 10: the graphs as they are drawn now (both panes, side by
 * side) saved as a standalone SVG or PNG picture, for a bug report. */
  function exportSvgText() {
    const panes = SIDES.map((s) => STATE.panes[s]).filter((p) => p && p.svg);
    const gap = 40, top = 28;
    const root = sv("svg", { xmlns: SVG, class: "padiff-export" });
    const style = sv("style");
    style.textContent = document.querySelector("style").textContent;
    root.appendChild(style);
    root.appendChild(sv("rect", { x: 0, y: 0, width: "100%", height: "100%", fill: "#ffffff" }));
    let x = 0, height = 0;
    for (const pane of panes) {
      const g = sv("g", { transform: "translate(" + x + "," + top + ")", "data-side": pane.side });
      root.appendChild(sv("text", { x: x + 4, y: 16, "font-size": 13, "font-weight": 600, fill: "#1d2330" },
        pane.title.textContent));
      for (const child of pane.svg.childNodes) g.appendChild(child.cloneNode(true));
      root.appendChild(g);
      x += pane.width + gap;
      height = Math.max(height, pane.height);
    }
    const width = Math.max(1, x - gap);
    root.setAttribute("width", width);
    root.setAttribute("height", height + top);
    root.setAttribute("viewBox", "0 0 " + width + " " + (height + top));
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(root);
  }
  function dataHref(text, type) {
    return text.length < 1500000 ? "data:" + type + ";charset=utf-8," + encodeURIComponent(text)
      : URL.createObjectURL(new Blob([text], { type }));
  }
  function saveAs(href, name) {
    const a = el("a", { href, download: name, hidden: "hidden" });
    document.body.appendChild(a);
    a.click();
    a.remove();
  }
  function exportSvg() { saveAs(dataHref(exportSvgText(), "image/svg+xml"), "padiff-graphs.svg"); }
  function exportPng() {
    const text = exportSvgText();
    const img = new Image();
    img.onload = () => {
      const w = img.naturalWidth || 1, h = img.naturalHeight || 1;
      const scale = Math.min(2, 12000 / w, 12000 / h, Math.sqrt(100e6 / (w * h)));
      const canvas = el("canvas", { width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(h * scale)) });
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      saveAs(canvas.toDataURL("image/png"), "padiff-graphs.png");
    };
    img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(text);
  }
