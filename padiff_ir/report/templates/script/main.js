/* padiff-ir report, part 10 of 10: draw the view of this result, then say it is ready. */
if (D.kind === "match" || D.kind === undefined) initMatch();
else initTraining();

document.documentElement.setAttribute("data-ready", "true");
window.__padiffReadyMs = performance.now();
