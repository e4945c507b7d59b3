/* padiff-ir report, part 2 of 10: the match result's pairs, modules and graph indices. */
// the match result and its indices; set by initMatchState() when the result is a match
let IDX, pairs, modules, graphs, pairNodes, tensorNode, groupPairs;
// tolerance="auto": each module's and op's error in units of its noise (report/noise_index.py)
let NOISE;

function initMatchState() {
  IDX = D.index || {};
  NOISE = IDX.noise || null;
  pairs = D.pairs || [];
  modules = D.modules || [];
  graphs = D.graphs || {};
  pairNodes = { a: new Map(), b: new Map() };
  tensorNode = { a: new Map(), b: new Map() };
  for (const side of SIDES) {
    (IDX.node_pair && IDX.node_pair[side] || []).forEach((p, i) => {
      if (p < 0) return;
      if (!pairNodes[side].has(p)) pairNodes[side].set(p, []);
      pairNodes[side].get(p).push(i);
    });
    const view = graphs[side];
    if (view) view.nodes.forEach((n, i) => (n.out || []).forEach((t) => tensorNode[side].set(t, i)));
  }
  groupPairs = new Set(IDX.groups || []);
  for (const side of SIDES) for (const p of groupPairs)
    for (const t of pairs[p][side] || []) {
      const i = tensorNode[side].get(t);
      if (i !== undefined && !(pairNodes[side].get(p) || []).includes(i)) {
        if (!pairNodes[side].has(p)) pairNodes[side].set(p, []);
        pairNodes[side].get(p).push(i);
      }
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
