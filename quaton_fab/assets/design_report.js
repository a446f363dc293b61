// quaton-fab design report: draws the level maps, 3D reliefs, stack, tolerance curves and printability spots
// from the page's JSON data block. Nothing is fetched; plotly.js is inlined before this script.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("page-data").textContent);
  const N = D.neurons, P = D.pitch_um, NL = D.levels.length;
  const H = D.levels.map(r => r.snapped_height_um);       // height above the base of each level (µm)
  const SPOT_STYLE = {isolated: ["#e8112d", "isolated pixel"], corner: ["#ff8c00", "corner-only contact"],
                      aspect: ["#d100d1", "tall thin feature"]};
  const maps = {};      // mask -> {levels: Uint8Array|Uint16Array, canvas, scale, base: ImageData}
  const showAll = {};   // mask -> bool
  let active = null;    // {mask, r, c}

  function b64bytes(text) {
    const bin = atob(text), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  async function inflate(entry) {
    const stream = new Blob([b64bytes(entry.deflate_b64)]).stream().pipeThrough(new DecompressionStream("deflate"));
    const buf = await new Response(stream).arrayBuffer();
    return entry.dtype === "uint16" ? new Uint16Array(buf) : new Uint8Array(buf);
  }
  function rgb(hex) { return [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16)); }

  // ---------------------------------------------------------------- level maps
  function drawMap(mask) {
    const m = maps[mask], ctx = m.canvas.getContext("2d");
    ctx.putImageData(m.base, 0, 0);
    const s = m.scale;
    const spots = D.masks[mask - 1].spots;
    if (showAll[mask]) {
      for (const kind of Object.keys(SPOT_STYLE)) {
        const rc = spots[kind].rc;
        ctx.strokeStyle = SPOT_STYLE[kind][0];
        ctx.lineWidth = Math.max(1, s / 5);
        for (let i = 0; i < rc.length; i += 2) ctx.strokeRect(rc[i + 1] * s + 0.5, rc[i] * s + 0.5, s - 1, s - 1);
      }
    }
    if (active && active.mask === mask) {
      const cx = (active.c + 0.5) * s, cy = (active.r + 0.5) * s, rad = Math.max(3 * s, m.canvas.width / 30);
      ctx.lineWidth = Math.max(2, m.canvas.width / 120);
      ctx.strokeStyle = "#ffffff";
      ctx.beginPath(); ctx.arc(cx, cy, rad + ctx.lineWidth, 0, 2 * Math.PI); ctx.stroke();
      ctx.strokeStyle = "#e8112d";
      ctx.beginPath(); ctx.arc(cx, cy, rad, 0, 2 * Math.PI); ctx.stroke();
    }
  }
  function buildMap(mask, levels) {
    const canvas = document.getElementById("map-" + mask);
    const scale = Math.max(1, Math.floor(480 / N));
    canvas.width = canvas.height = N * scale;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(N * scale, N * scale);
    const cols = D.colors.map(rgb);
    for (let r = 0; r < N; r++) for (let c = 0; c < N; c++) {
      const col = cols[levels[r * N + c]];
      for (let dy = 0; dy < scale; dy++) {
        let o = ((r * scale + dy) * N * scale + c * scale) * 4;
        for (let dx = 0; dx < scale; dx++, o += 4) { img.data[o] = col[0]; img.data[o + 1] = col[1];
          img.data[o + 2] = col[2]; img.data[o + 3] = 255; }
      }
    }
    maps[mask] = {levels, canvas, scale, base: img};
    drawMap(mask);
    canvas.addEventListener("mousemove", ev => {
      const rect = canvas.getBoundingClientRect();
      const c = Math.floor((ev.clientX - rect.left) / rect.width * N), r = Math.floor((ev.clientY - rect.top) / rect.height * N);
      if (r >= 0 && r < N && c >= 0 && c < N) {
        const k = levels[r * N + c];
        canvas.title = `row ${r}, column ${c}: level ${k}, ${H[k].toFixed(4)} µm above the base`;
      }
    });
    // scale bar: a round length near a quarter of the aperture, drawn at the displayed width
    const side = N * P, target = side / 4, p10 = Math.pow(10, Math.floor(Math.log10(target)));
    const len = [1, 2, 5, 10].map(f => f * p10).filter(v => v <= target).pop() || p10;
    const frac = len / side;
    document.getElementById("scale-" + mask).innerHTML =
      `<svg width="400" height="26" role="img" aria-label="scale bar ${len} µm"><rect x="0" y="4" width="${(400 * frac).toFixed(1)}" ` +
      `height="6" fill="#1d2430"></rect><text x="0" y="23" font-size="12">${len} µm</text>` +
      `<text x="400" y="23" font-size="12" text-anchor="end">aperture ${side.toFixed(2)} µm, pixel (0, 0) top-left</text></svg>`;
    const counts = new Array(NL).fill(0);
    for (let i = 0; i < levels.length; i++) counts[levels[i]]++;
    let rows = "";
    D.levels.forEach((row, k) => {
      rows += `<tr><td><span class="swatch" style="background:${D.colors[k]}"></span> ${row.k}</td>` +
        `<td class="r">${row.phase_rad.toFixed(4)}</td><td class="r">${row.snapped_height_um.toFixed(4)}</td>` +
        `<td class="r">${row.z_steps === null ? "—" : row.z_steps}</td><td class="r">${counts[k]}</td></tr>`;
    });
    document.getElementById("legend-" + mask).innerHTML =
      `<table class="legend"><thead><tr><th>level</th><th>phase (rad)</th><th>height (µm)</th><th>slices</th>` +
      `<th>pixels</th></tr></thead><tbody>${rows}</tbody></table>`;
  }

  // ---------------------------------------------------------------- 3D
  function colorscale() {
    const cs = [];
    D.colors.forEach((c, k) => { cs.push([k / NL, c]); cs.push([(k + 1) / NL, c]); });
    return cs;
  }
  // Stepped surface of one mask: blocks of b×b pixels, each at the tallest level inside it (see the page text).
  function stepped(levels, zOffset) {
    const b = D.view3d.block, M = Math.ceil(N / b);
    const blk = [];
    for (let bi = 0; bi < M; bi++) {
      const row = [];
      for (let bj = 0; bj < M; bj++) {
        let best = 0, bestH = -Infinity;
        for (let r = bi * b; r < Math.min(N, (bi + 1) * b); r++)
          for (let c = bj * b; c < Math.min(N, (bj + 1) * b); c++) {
            const k = levels[r * N + c];
            if (H[k] > bestH) { bestH = H[k]; best = k; }
          }
        row.push(best);
      }
      blk.push(row);
    }
    const xs = [], ys = [], z = [], sc = [];
    for (let bj = 0; bj < M; bj++) { xs.push(bj * b * P, Math.min(N, (bj + 1) * b) * P); }
    // y increases upwards: image row 0 is at the top (y = N·p)
    for (let bi = M - 1; bi >= 0; bi--) { ys.push((N - Math.min(N, (bi + 1) * b)) * P, (N - bi * b) * P); }
    for (let yi = 0; yi < 2 * M; yi++) {
      const bi = M - 1 - Math.floor(yi / 2), zr = [], sr = [];
      for (let xi = 0; xi < 2 * M; xi++) {
        const k = blk[bi][Math.floor(xi / 2)];
        zr.push(zOffset + D.base_um + H[k]); sr.push(k + 0.5);
      }
      z.push(zr); sc.push(sr);
    }
    return {type: "surface", x: xs, y: ys, z: z, surfacecolor: sc, cmin: 0, cmax: NL, colorscale: colorscale(),
            showscale: false, hovertemplate: "x %{x:.2f} µm<br>y %{y:.2f} µm<br>z %{z:.3f} µm<extra></extra>",
            lighting: {ambient: 0.7, diffuse: 0.6, specular: 0.1}, flatshading: true};
  }
  function scene(zmax, exag) {
    const side = N * P;
    return {aspectmode: "manual", aspectratio: {x: 1, y: 1, z: exag * zmax / side},
            xaxis: {title: {text: "x (µm)"}, range: [0, side]}, yaxis: {title: {text: "y (µm)"}, range: [0, side]},
            zaxis: {title: {text: "z (µm)"}, range: [zmax < 0 ? zmax : 0, Math.abs(zmax)]},
            camera: {eye: {x: 1.0, y: -1.3, z: 0.8}}};
  }
  const zmaxOf = {};
  const CONFIG = {displaylogo: false, responsive: false, scrollZoom: true};
  async function plotRelief(mask) {
    const id = "relief3d", zmax = D.base_um + Math.max(...H), div = document.getElementById(id);
    zmaxOf[id] = zmax;
    const exag = Number(document.querySelector("input.exag[data-target='relief3d']").value);
    const layout = {margin: {l: 0, r: 0, t: 28, b: 0}, scene: scene(zmax, exag),
      title: {text: `mask ${mask}: printed relief (base + levels), µm`, font: {size: 13}}};
    if (div.layout && div.layout.scene) layout.scene.camera = div.layout.scene.camera;  // keep the view
    await Plotly.react(id, [stepped(maps[mask].levels, 0)], layout, CONFIG);
    div.dataset.mask = String(mask);
    document.getElementById("relief-mask").value = String(mask);
  }
  function hookViewer() {
    document.getElementById("relief-mask").addEventListener("change", ev => plotRelief(Number(ev.target.value)));
    document.querySelectorAll("button.view3d").forEach(b => b.addEventListener("click", async () => {
      await plotRelief(Number(b.dataset.mask));
      document.getElementById("relief-viewer").scrollIntoView({block: "center"});
    }));
  }
  async function plotStack() {
    const traces = [], L = D.layers, pp = D.plate_pitch_um;
    for (let l = 0; l < L; l++) {
      const t = stepped(maps[l + 1].levels, l * pp);
      t.name = "mask " + (l + 1);
      traces.push(t);
    }
    const top = (L - 1) * pp + D.base_um + Math.max(...H), c = N * P / 2, arrow = Math.max(4, 0.25 * top);
    const up = D.orientation !== "relief-first";
    const z0 = up ? -arrow : top + arrow, z1 = up ? 0 : top;
    traces.push({type: "scatter3d", mode: "lines+text", x: [c, c], y: [c, c], z: [z0, z1], text: ["light in", ""],
                 line: {width: 8, color: "#e8112d"}, textfont: {color: "#e8112d"}, showlegend: false});
    traces.push({type: "cone", x: [c], y: [c], z: [z1], u: [0], v: [0], w: [up ? 1 : -1], sizemode: "absolute",
                 sizeref: arrow / 3, anchor: "tip", showscale: false, colorscale: [[0, "#e8112d"], [1, "#e8112d"]]});
    zmaxOf.stack3d = top + arrow;
    const sc = scene(top + arrow, 1);
    sc.zaxis.range = [up ? -arrow : 0, top + (up ? 0 : arrow)];
    sc.aspectratio.z = (top + arrow) / (N * P);
    await Plotly.newPlot("stack3d", traces, {margin: {l: 0, r: 0, t: 28, b: 0}, scene: sc,
      title: {text: `${L} plates, ${pp.toFixed(3)} µm apart (mask 1 at the bottom)`, font: {size: 13}}}, CONFIG);
  }
  function hookExaggeration() {
    document.querySelectorAll("input.exag").forEach(inp => {
      inp.addEventListener("input", () => {
        const id = inp.dataset.target, e = Number(inp.value);
        inp.nextElementSibling.textContent = e + "×";
        Plotly.relayout(id, {"scene.aspectratio": {x: 1, y: 1, z: e * zmaxOf[id] / (N * P)}});
      });
    });
  }
  async function plotTolerance() {
    const host = document.getElementById("tolerance-curves");
    if (!host || !D.tolerance_curves) return;
    host.classList.remove("figure", "wide");
    host.className = "grid";
    for (const [i, c] of D.tolerance_curves.entries()) {
      const div = document.createElement("div");
      div.className = "figure plot2d small";
      div.style.width = "340px"; div.style.height = "260px";
      div.id = "tolerance-" + i;
      host.appendChild(div);
      await Plotly.newPlot(div, [
        {x: c.x, y: c.mean, mode: "lines+markers", name: "mean"},
        {x: c.x, y: c.p5, mode: "lines+markers", name: "5th percentile", line: {dash: "dash"}}],
        {margin: {l: 50, r: 10, t: 30, b: 40}, title: {text: c.error, font: {size: 13}},
         xaxis: {title: {text: "σ (" + c.unit + ")"}}, yaxis: {title: {text: "metric"}},
         legend: {orientation: "h", y: -0.3}, showlegend: i === 0}, CONFIG);
    }
  }

  // ---------------------------------------------------------------- printability spots
  function highlight(mask, r, c, item) {
    active = {mask, r, c};
    document.querySelectorAll(".spot.active").forEach(e => e.classList.remove("active"));
    if (item) item.classList.add("active");
    Object.keys(maps).forEach(m => drawMap(Number(m)));
    const canvas = maps[mask].canvas;
    canvas.dataset.highlight = r + "," + c;
    canvas.scrollIntoView({block: "center"});
  }
  function buildSpotLists() {
    const host = document.getElementById("spotlists");
    let html = "";
    for (const m of D.masks) for (const kind of Object.keys(SPOT_STYLE)) {
      const s = m.spots[kind];
      if (!s.count) continue;
      const shown = Math.min(D.spot_list, s.rc.length / 2);
      let items = "";
      for (let i = 0; i < shown; i++) {
        const r = s.rc[2 * i], c = s.rc[2 * i + 1];
        items += `<span class="spot" data-mask="${m.mask}" data-kind="${kind}" data-row="${r}" data-col="${c}">` +
          `(${r}, ${c})</span> `;
      }
      const more = s.count > shown ? ` … and ${s.count - shown} more (all shown with “show all printability spots”` +
        (s.rc.length / 2 >= D.spot_max ? `: the first ${D.spot_max}` : "") + ")" : "";
      html += `<div class="warnitem"><b style="color:${SPOT_STYLE[kind][0]}">mask ${m.mask}: ${s.count} ` +
        `${SPOT_STYLE[kind][1]}${s.count === 1 ? "" : "s"}</b> (row, column):<div class="spotlist">${items}${more}</div></div>`;
    }
    host.innerHTML = html || "<p>No isolated pixels, corner-only contacts or tall thin features.</p>";
    host.querySelectorAll(".spot").forEach(e => e.addEventListener("click", () =>
      highlight(Number(e.dataset.mask), Number(e.dataset.row), Number(e.dataset.col), e)));
    document.querySelectorAll("input.showspots").forEach(inp => inp.addEventListener("change", () => {
      showAll[Number(inp.dataset.mask)] = inp.checked; drawMap(Number(inp.dataset.mask));
    }));
  }

  async function main() {
    for (const m of D.masks) buildMap(m.mask, await inflate(m.levels));
    buildSpotLists();
    await plotRelief(1);
    hookViewer();
    await plotStack();
    await plotTolerance();
    hookExaggeration();
    document.body.dataset.ready = "1";
  }
  main().catch(err => { document.body.dataset.error = String(err); console.error(err); });
})();
