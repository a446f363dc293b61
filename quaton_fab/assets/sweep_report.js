// quaton-fab study page: metric vs level count per method (mean ± std over seeds) and the method ranking,
// drawn from the page's JSON data block with the inlined plotly.js. Nothing is fetched.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("page-data").textContent);
  const ORDER = ["fp", "pq", "ste", "gs", "psq", "psq-lt"];
  const CONFIG = {displaylogo: false, responsive: false};
  const rankOf = m => (ORDER.indexOf(m) < 0 ? ORDER.length : ORDER.indexOf(m));

  async function plotGrid(g, i) {
    const div = document.getElementById("levels-" + i);
    const scale = g.primary === "accuracy" ? 100 : 1;
    const unit = g.primary === "accuracy" ? "accuracy (%)" : g.primary.toUpperCase();
    if (div) {
      const rows = g.rows.filter(r => "method" in r.params && "levels" in r.params);
      const methods = [...new Set(rows.map(r => r.params.method))].sort((a, b) => rankOf(a) - rankOf(b) || (a < b ? -1 : 1));
      const traces = [], levels = [...new Set(rows.filter(r => r.params.method !== "fp").map(r => r.params.levels))].sort((a, b) => a - b);
      for (const m of methods) {
        if (m === "fp") {
          const fp = rows.find(r => r.params.method === "fp" && r.metrics.training_unquantized);
          if (fp && levels.length) traces.push({x: [levels[0], levels[levels.length - 1]],
            y: [fp.metrics.training_unquantized.mean * scale, fp.metrics.training_unquantized.mean * scale],
            mode: "lines", line: {dash: "dash", color: "#666"}, name: "FP, unquantized (training model)"});
          continue;
        }
        const pts = rows.filter(r => r.params.method === m && r.metrics[D.fidelity])
          .sort((a, b) => a.params.levels - b.params.levels);
        traces.push({x: pts.map(r => r.params.levels), y: pts.map(r => r.metrics[D.fidelity].mean * scale),
          error_y: {type: "data", array: pts.map(r => (r.metrics[D.fidelity].std || 0) * scale), visible: true},
          mode: "lines+markers", name: m.toUpperCase()});
      }
      await Plotly.newPlot(div, traces, {margin: {l: 60, r: 10, t: 36, b: 50},
        title: {text: g.label + ": mean ± std over seeds", font: {size: 14}},
        xaxis: {type: "log", title: {text: "phase levels n"}, tickvals: levels, ticktext: levels.map(String)},
        yaxis: {title: {text: unit + " — " + D.fidelity_name}}}, CONFIG);
    }
    const rdiv = document.getElementById("ranking-" + i);
    if (rdiv && g.ranking.length) {
      const rk = g.ranking.slice().reverse();
      await Plotly.newPlot(rdiv, [{x: rk.map(r => r.mean_rank), y: rk.map(r => r.method.toUpperCase()),
        mode: "markers", marker: {size: 14}, type: "scatter", name: "mean rank"}],
        {margin: {l: 70, r: 10, t: 30, b: 45}, title: {text: "mean rank (1 = best)", font: {size: 13}},
         xaxis: {title: {text: "mean rank over level counts"}, rangemode: "tozero"}, showlegend: false}, CONFIG);
    }
  }
  async function main() {
    for (const [i, g] of D.grids.entries()) await plotGrid(g, i);
    document.body.dataset.ready = "1";
  }
  main().catch(err => { document.body.dataset.error = String(err); console.error(err); });
})();
