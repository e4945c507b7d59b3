/* padiff-ir report, part 7 of 10: the two panes move together. Scrolling one brings the
 * partner of what sits at its centre to the same place in the other; zoom applies to both
 * (buttons, or Ctrl + wheel); each pane has a minimap (click or drag it to move). */
  let syncing = 0;
  function syncPaused(fn) {  // moves made by the code itself do not echo back
    syncing++;
    try { fn(); } finally { requestAnimationFrame(() => requestAnimationFrame(() => { syncing--; })); }
  }
  function centreOn(pane, x, y) {
    const z = pane.zoom, box = pane.scroll;
    box.scrollLeft = Math.max(0, x * z - box.clientWidth / 2);
    box.scrollTop = Math.max(0, y * z - box.clientHeight / 2);
    drawMinimapView(pane);
  }
  function viewCentre(pane) {
    const box = pane.scroll, z = pane.zoom;
    return [(box.scrollLeft + box.clientWidth / 2) / z, (box.scrollTop + box.clientHeight / 2) / z];
  }
  function partnerUnit(pane, u, other) {
    if (u.kind === "op") {
      const list = pairNodes[other.side].get(pane.pairOf[u.index]) || [];
      return list.length ? other.unitMap.get(other.unitKey(list[0])) || null : null;
    }
    const partner = partnerModule(pane.side, u.path);
    if (partner === undefined || !other.hasModule(partner)) return null;
    if (u.kind === "fold") return other.unitMap.get("f:" + partner) || other.unitAt("module", partner);
    return other.unitAt("module", partner);
  }
  function followScroll(pane) {
    const other = STATE.panes[OTHER[pane.side]];
    if (!other || !pane.units || !other.units) return;
    const [cx, cy] = viewCentre(pane);
    const dist = (u) => Math.abs(u.px + u.w / 2 - cx) + Math.abs(u.py + u.h / 2 - cy);
    const near = pane.units.map((u) => [dist(u), u]).sort((x, y) => x[0] - y[0]);
    for (const [, u] of near.slice(0, 60)) {
      const v = partnerUnit(pane, u, other);
      if (!v) continue;
      const dx = cx - (u.px + u.w / 2), dy = cy - (u.py + u.h / 2);
      syncPaused(() => centreOn(other, v.px + v.w / 2 + dx, v.py + v.h / 2 + dy));
      return;
    }
    const fx = cx / pane.width, fy = cy / pane.height;  // nothing paired nearby: same fraction
    syncPaused(() => centreOn(other, fx * other.width, fy * other.height));
  }
  function watchPane(pane) {
    let queued = false;
    pane.scroll.addEventListener("scroll", () => {
      drawMinimapView(pane);
      if (syncing || queued) return;
      queued = true;
      requestAnimationFrame(() => { queued = false; if (!syncing) followScroll(pane); });
    });
    pane.scroll.addEventListener("wheel", (ev) => {
      if (!ev.ctrlKey) return;
      ev.preventDefault();
      zoomAll(ev.deltaY < 0 ? 1.15 : 1 / 1.15);
    }, { passive: false });
    const move = (ev) => {
      const r = pane.mini.getBoundingClientRect();
      centreOn(pane, (ev.clientX - r.left) / pane.miniScale[0], (ev.clientY - r.top) / pane.miniScale[1]);
    };
    pane.mini.addEventListener("mousedown", (ev) => {
      move(ev);
      const drag = (e) => move(e);
      const stop = () => { window.removeEventListener("mousemove", drag); window.removeEventListener("mouseup", stop); };
      window.addEventListener("mousemove", drag);
      window.addEventListener("mouseup", stop);
    });
  }
  function zoomAll(factor) {
    for (const side of SIDES) {
      const pane = STATE.panes[side];
      if (!pane || !pane.svg) continue;
      const [cx, cy] = viewCentre(pane);
      pane.zoom = Math.max(0.1, Math.min(3, pane.zoom * factor));
      pane.svg.setAttribute("width", pane.width * pane.zoom);
      pane.svg.setAttribute("height", pane.height * pane.zoom);
      syncPaused(() => centreOn(pane, cx, cy));
    }
  }

  // -- minimap -------------------------------------------------------------------------------
  const MINI = 150;
  function drawMinimap(pane) {
    const s = Math.min(MINI / pane.width, MINI / pane.height);
    const sx = Math.max(s, Math.min(1, 36 / pane.width));  // a tall graph's strip stays wide enough
    pane.miniScale = [sx, s];
    const base = document.createElement("canvas");
    base.width = Math.max(8, Math.ceil(pane.width * sx));
    base.height = Math.max(8, Math.ceil(pane.height * s));
    const ctx = base.getContext("2d");
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, base.width, base.height);
    ctx.strokeStyle = "#c3cde0";
    for (const f of pane.frames) ctx.strokeRect(f.x * sx, f.y * s, f.w * sx, f.h * s);
    for (const u of pane.units) {
      const g = pane.unitEls.get(u.key);
      const box = g ? g.querySelector("rect.box") : null;
      ctx.fillStyle = box ? box.getAttribute("fill") : "#ddd";
      ctx.fillRect(u.px * sx, u.py * s, Math.max(1.5, u.w * sx), Math.max(1.5, u.h * s));
      if (g && (g.classList.contains("culprit") || g.classList.contains("contains-culprit"))) {
        ctx.strokeStyle = "#c62828";
        ctx.strokeRect(u.px * sx, u.py * s, Math.max(1.5, u.w * sx), Math.max(1.5, u.h * s));
      }
    }
    pane.miniBase = base;
    pane.mini.width = base.width;
    pane.mini.height = base.height;
    drawMinimapView(pane);
  }
  function drawMinimapView(pane) {
    if (!pane.miniBase) return;
    const ctx = pane.mini.getContext("2d"), box = pane.scroll;
    const sx = pane.miniScale[0] / pane.zoom, s = pane.miniScale[1] / pane.zoom;
    ctx.drawImage(pane.miniBase, 0, 0);
    ctx.strokeStyle = "#2f5fd0";
    ctx.lineWidth = 1.5;
    ctx.fillStyle = "rgba(47, 95, 208, 0.12)";
    const r = [box.scrollLeft * sx, box.scrollTop * s, box.clientWidth * sx, box.clientHeight * s];
    ctx.fillRect(...r);
    ctx.strokeRect(...r);
  }
