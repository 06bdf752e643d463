// saematch explorer: pick a feature, follow its path through the layers (composed matchings,
// perm_AC = perm_BC[perm_AB], and exact LAPs where computed). No network: data files beside
// the page are loaded with <script src> (works from file://), each calls SAEX.put(name, data).
// Runs after common.js (the loader, META, esc, fmt, highlight), in the same <script>.

const LAYERS = META.layers;
const F = META.width;
const LABELS = { 1: ["DIFFERENT", C.verm], 2: ["MAYBE", C.orange], 3: ["SAME", C.green] };

function prepLink(lk) {
  if (!lk || lk.ready) return lk;
  lk.target = Int32Array.from(lk.target);
  lk.cost = floats(lk.cost);
  lk.conf = lk.conf ? floats(lk.conf) : null;
  if (lk.pred) { lk.pred = Int32Array.from(lk.pred); lk.pred_cost = lk.pred_cost ? floats(lk.pred_cost) : null; }
  if (lk.split) lk.split = Int32Array.from(lk.split);
  lk.ready = true;
  return lk;
}

function inverse(lk) { // dst feature -> src feature (−1: nobody maps to it)
  if (!lk.inv) {
    lk.inv = new Int32Array(lk.target.length).fill(-1);
    lk.target.forEach((j, i) => { if (j >= 0) lk.inv[j] = i; });
  }
  return lk.inv;
}

function sortedCosts(lk) {
  if (!lk.sorted) lk.sorted = Float32Array.from(lk.cost.filter((c) => !Number.isNaN(c))).sort();
  return lk.sorted;
}

function percentile(lk, c) { // share (%) of this pair's matched costs below c
  const s = sortedCosts(lk);
  let lo = 0, hi = s.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (s[m] < c) lo = m + 1; else hi = m; }
  return s.length ? Math.round((100 * lo) / s.length) : NaN;
}

const layerData = {};
let allLayers = null;
function loadLayers() {
  if (!allLayers) {
    let done = 0;
    allLayers = Promise.all(LAYERS.map((L) => load(`layer_${L}`).then((d) => {
      prepLink(d.next);
      d.exact.forEach(prepLink);
      layerData[L] = d;
      status(`loaded ${++done}/${LAYERS.length} layer files`);
      return d;
    })));
  }
  return allLayers;
}

const chunkOf = (f) => Math.floor(f / META.desc_chunk);
function descName(L, f) { return `desc_${L}_${chunkOf(f)}`; }
function desc(L, f) {
  const d = store[descName(L, f)];
  return d ? d[f % META.desc_chunk] : undefined;
}
function loadDescs(pairs) {
  const names = [...new Set(pairs.filter(([, f]) => f >= 0).map(([L, f]) => descName(L, f)))];
  return Promise.all(names.map(load));
}

// ---- paths ---------------------------------------------------------------------------------
function exactLink(a, b) { // the exact link a -> b (a < b), if computed
  return (layerData[a] ? layerData[a].exact : []).find((lk) => lk.dst === b) || null;
}

function computePath(L0, f0) {
  // rows[k] for LAYERS[k]: composed feature, step link from the previous layer, exact partner
  const k0 = LAYERS.indexOf(L0);
  const rows = LAYERS.map((L) => ({ layer: L, f: -1, gone: false, ex: null }));
  rows[k0].f = f0;
  for (let k = k0 + 1; k < LAYERS.length; k++) {
    const lk = layerData[LAYERS[k - 1]].next;
    const prev = rows[k - 1].f;
    rows[k].f = prev >= 0 ? lk.target[prev] : -1;
    rows[k].gone = prev < 0 || rows[k - 1].gone;
    if (prev >= 0) {
      rows[k].step = { cost: lk.cost[prev], conf: lk.conf ? lk.conf[prev] : null, lk,
        judge: layerData[LAYERS[k - 1]].judge[prev], from: prev };
    }
  }
  for (let k = k0 - 1; k >= 0; k--) {
    const lk = layerData[LAYERS[k]].next;
    const nxt = rows[k + 1].f;
    rows[k].f = nxt >= 0 ? inverse(lk)[nxt] : -1;
    rows[k].gone = nxt < 0 || rows[k + 1].gone;
    if (rows[k].f >= 0) {
      const i = rows[k].f;
      rows[k + 1].step = { cost: lk.cost[i], conf: lk.conf ? lk.conf[i] : null, lk,
        judge: layerData[LAYERS[k]].judge[i], from: i };
    }
  }
  rows.forEach((r, k) => { // exact LAP between the selected layer and this one
    if (k === k0) return;
    const lk = k > k0 ? exactLink(L0, r.layer) : exactLink(r.layer, L0);
    if (!lk) return;
    if (k > k0) r.ex = { f: lk.target[f0], cost: lk.cost[f0], conf: lk.conf ? lk.conf[f0] : null };
    else {
      const i = inverse(lk)[f0];
      r.ex = { f: i, cost: i >= 0 ? lk.cost[i] : NaN, conf: i >= 0 && lk.conf ? lk.conf[i] : null };
    }
  });
  return rows;
}

// ---- formatting ----------------------------------------------------------------------------
function fid(L, f, extra = "") {
  if (f === undefined || f === null || f < 0) return `<span class="fid none">unmatched</span>`;
  return `<a class="fid" href="#L${L}/${f}" data-l="${L}" data-f="${f}" ${extra}>L${L}/${f}</a>`;
}
function descHTML(L, f, words) {
  if (f < 0) return "";
  const d = desc(L, f);
  if (d === undefined) return `<span class="muted">…</span>`;
  if (d === null) return `<span class="muted">(no description)</span>`;
  return `<span class="desc" title="${esc(d)}">${highlight(d, words)}</span>`;
}
function pill(label) {
  if (!label) return "";
  const [name, col] = LABELS[label] || [`label ${label}`, C.grey];
  return `<span class="pill" style="background:${col}" title="judge label of this step">${name}</span>`;
}
function costBar(lk, c) {
  if (Number.isNaN(c)) return "";
  const p = percentile(lk, c);
  const col = p <= 50 ? C.blue : p <= 90 ? C.orange : C.verm;
  return `<span class="bar" style="width:${Math.max(2, p * 0.5)}px;background:${col}"
    title="${p} % of this layer pair's matched features have a lower cost"></span>
    <span class="muted">p${p}</span>`;
}

// ---- state and rendering -------------------------------------------------------------------
const state = { L: null, f: null, rows: null, focusPair: 0, words: [] };

function status(msg) {
  $("status").textContent = `${msg} · data in ${META.data_dir}/ · page written ${META.generated}`;
}

async function select(L, f, { push = true } = {}) {
  L = Number(L); f = Number(f);
  if (!LAYERS.includes(L)) return showError(`no layer ${L}: this run's layers are ${LAYERS.join(", ")}`);
  if (!(f >= 0 && f < F)) return showError(`feature ${f} is out of range: features are 0…${F - 1}`);
  showError("");
  try {
    await loadLayers();
    state.L = L; state.f = f;
    state.rows = computePath(L, f);
    const k = LAYERS.indexOf(L);
    state.focusPair = Math.min(Math.max(k - 1, 0), META.pairs.length - 1);
    const need = state.rows.flatMap((r) => [[r.layer, r.f], ...(r.ex ? [[r.layer, r.ex.f]] : [])]);
    const preds = (layerData[L].preds[f] || []).filter((p) => p[0] === "res").map((p) => [p[1], p[2]]);
    await loadDescs(need.concat(preds.filter(([pl]) => LAYERS.includes(pl))));
    if (push && location.hash !== `#L${L}/${f}`) history.pushState(null, "", `#L${L}/${f}`);
    render();
  } catch (err) { showError(String(err.message || err)); }
}

function render() {
  renderFeature();
  renderPath();
  renderNeighbours();
  renderCharts();
  // keep the selected layer in view inside the path's own scroll box (the page stays put)
  const wrap = document.querySelector(".pathwrap");
  const row = document.querySelector("tr.selected");
  if (wrap && row) wrap.scrollTop = Math.max(0, row.offsetTop - wrap.clientHeight / 2 + row.offsetHeight / 2);
}

function renderFeature() {
  const { L, f, rows } = state;
  const k = LAYERS.indexOf(L);
  const inStep = rows[k].step;
  const out = k + 1 < LAYERS.length ? rows[k + 1].step : null;
  const stat = (name, s) => (s ? `<span>${name} <b>${fmt(s.cost)}</b> ${costBar(s.lk, s.cost)}${
    s.conf !== null && s.conf !== undefined ? ` · confidence <b>${fmt(s.conf)}</b>` : ""} ${pill(s.judge)}</span>` : "");
  $("feature").innerHTML = `<h2>Layer ${L} · feature ${f}</h2>
    <div class="bigdesc">${descHTML(L, f, state.words)}</div>
    <div class="stats">
      ${stat(`cost from L${k > 0 ? LAYERS[k - 1] : "–"}`, inStep)}
      ${stat(`cost to L${k + 1 < LAYERS.length ? LAYERS[k + 1] : "–"}`, out)}
      ${k > 0 && !inStep ? `<span class="flag">no partner in L${LAYERS[k - 1]}</span>` : ""}
      ${out === null && k + 1 < LAYERS.length ? "" : ""}
      ${k + 1 < LAYERS.length && rows[k + 1].f < 0 ? `<span class="flag">unmatched to L${LAYERS[k + 1]}</span>` : ""}
    </div>`;
}

function exactNote() {
  const starts = META.exact_starts;
  if (!starts.length) return "no exact LAPs in this run (experiment.exact_starts=[])";
  const here = starts.includes(state.L);
  const below = starts.filter((s) => s < state.L);
  if (here) return `exact LAP from L${state.L} to every later layer` + (below.length ? `; from L${below.join(", L")} to here` : "");
  if (below.length) return `exact LAP from L${below.join(", L")} to L${state.L}; none from L${state.L} onward (exact_starts: [${starts}])`;
  return `no exact LAP touches L${state.L} (exact_starts: [${starts}])`;
}

function renderPath() {
  const { rows, L } = state;
  const hasConf = META.has_confidence;
  const hasJudge = META.has_judge;
  const body = rows.map((r, k) => {
    const s = r.step;
    const same = r.ex && r.ex.f === r.f;
    const ex = r.ex ? `${fid(r.layer, r.ex.f)} ${same ? '<span class="same" title="exact LAP agrees with the composed path">=</span>'
      : '<span class="diff" title="exact LAP differs from the composed path">≠</span>'}
      <div class="muted">${fmt(r.ex.cost)}</div>` : '<span class="muted">—</span>';
    const exDesc = r.ex && !same && r.ex.f >= 0 ? `<div class="exline">exact: ${descHTML(r.layer, r.ex.f, state.words)}</div>` : "";
    const unmatched = s && s.lk && r.f < 0 ? ' <span class="flag">unmatched</span>' : "";
    return `<tr data-l="${r.layer}" class="${r.layer === L ? "selected" : ""} ${r.gone ? "gone" : ""}">
      <td class="num">L${r.layer}</td>
      <td>${r.f >= 0 ? fid(r.layer, r.f) : '<span class="flag">unmatched</span>'}</td>
      <td class="num">${s ? `${fmt(s.cost)}<br>${costBar(s.lk, s.cost)}` : '<span class="muted">—</span>'}${unmatched}</td>
      ${hasConf ? `<td class="num">${s ? fmt(s.conf) : "—"}</td>` : ""}
      ${hasJudge ? `<td>${s ? pill(s.judge) || '<span class="muted">—</span>' : ""}</td>` : ""}
      <td>${descHTML(r.layer, r.f, state.words)}${exDesc}</td>
      <td class="num">${ex}</td></tr>`;
  }).join("");
  const el = $("path");
  el.hidden = false;
  el.innerHTML = `<h3>Path of L${L}/${state.f} <span class="sub">forward and backward · step cost = pair cost
    from the layer above (composed path) · ${exactNote()}</span></h3>
    <div class="pathwrap"><table class="path"><colgroup><col style="width:46px"><col style="width:84px"><col style="width:112px">
      ${hasConf ? '<col style="width:80px">' : ""}${hasJudge ? '<col style="width:90px">' : ""}<col><col style="width:96px"></colgroup>
    <thead><tr><th>layer</th><th>composed</th><th>step cost</th>${hasConf ? "<th>confidence</th>" : ""}
      ${hasJudge ? "<th>judge</th>" : ""}<th>description</th><th>exact LAP</th></tr></thead>
    <tbody>${body}</tbody></table></div>
    <div class="legend"><span><span class="sw" style="background:${C.blue}"></span>cost ≤ median of its layer pair</span>
      <span><span class="sw" style="background:${C.orange}"></span>≤ 90th percentile</span>
      <span><span class="sw" style="background:${C.verm}"></span>worst 10 %</span>
      <span><span class="same">=</span> / <span class="diff">≠</span> exact LAP agrees / differs</span></div>`;
}

function renderNeighbours() {
  const { L, f, rows } = state;
  const k = LAYERS.indexOf(L);
  const line = (key, html) => `<div class="k">${key}</div><div>${html}</div>`;
  let html = "";
  if (k > 0) html += line(`matched at L${LAYERS[k - 1]}`, `${fid(LAYERS[k - 1], rows[k - 1].f)} ${descHTML(LAYERS[k - 1], rows[k - 1].f)}`);
  if (k + 1 < LAYERS.length) html += line(`matched at L${LAYERS[k + 1]}`, `${fid(LAYERS[k + 1], rows[k + 1].f)} ${descHTML(LAYERS[k + 1], rows[k + 1].f)}`);
  if (k > 0) {
    const lk = layerData[LAYERS[k - 1]].next;
    if (lk.k) {
      const top = Array.from({ length: lk.k }, (_, r) => [lk.pred[f * lk.k + r], lk.pred_cost ? lk.pred_cost[f * lk.k + r] : NaN]);
      html += line(`cheapest at L${LAYERS[k - 1]} (top ${lk.k})`, top.map(([i, c]) => `${fid(LAYERS[k - 1], i)} <span class="muted">${fmt(c)}</span>`).join(" · "));
    }
  }
  if (k + 1 < LAYERS.length) {
    const lk = layerData[L].next;
    if (lk.split && lk.split[2 * f] >= 0) {
      html += line("splits into", `${fid(LAYERS[k + 1], lk.split[2 * f])} and ${fid(LAYERS[k + 1], lk.split[2 * f + 1])}`);
    }
  }
  html += line("same layer", `${[f > 0 ? fid(L, f - 1) : "", f + 1 < F ? fid(L, f + 1) : ""].filter(Boolean).join(" · ")} <span class="muted">(keys <kbd>[</kbd> <kbd>]</kbd>)</span>`);
  const preds = layerData[L].preds[f];
  if (META.has_preds) {
    if (preds && preds.length) {
      const byModule = {};
      preds.forEach(([m, pl, pf, w]) => (byModule[m] = byModule[m] || []).push([pl, pf, w]));
      for (const [m, ps] of Object.entries(byModule)) {
        html += line(`flow: from ${esc(m)}`, ps.map(([pl, pf, w]) => `${m === "res" && LAYERS.includes(pl) ? fid(pl, pf) : `<span class="fid none" title="a feature of the ${esc(m)} SAE, not of this run's residual SAEs">${esc(m)} L${pl}/${pf}</span>`} <span class="muted">${fmt(w)}</span>`).join(" · "));
      }
    } else html += line("flow graph", '<span class="muted">no predecessors recorded for this feature</span>');
  } else html += line("flow graph", '<span class="muted">none in this run (predecessors by module appear here when a flow graph is given)</span>');
  const el = $("neighbours");
  el.hidden = false;
  el.innerHTML = `<h3>Neighbours</h3><div class="nb">${html}</div>`;
}

// ---- charts (inline SVG) -------------------------------------------------------------------
const W = 388, H = 150, M = { l: 44, r: 8, t: 8, b: 26 };
const pairLabel = (p) => `${p.src}→${p.dst}`;
const tickPair = (p) => (META.pairs.length > 8 ? `${p.src}` : pairLabel(p)); // room on the axis
function axes(xs, yTicks, yFmt, yLabel) {
  let g = "";
  for (const [y, v] of yTicks) {
    g += `<line x1="${M.l}" x2="${W - M.r}" y1="${y}" y2="${y}" stroke="#ddd" stroke-width="0.6"/>
      <text x="${M.l - 4}" y="${y + 3}" text-anchor="end">${yFmt(v)}</text>`;
  }
  const every = Math.ceil(xs.length / 13);
  xs.forEach(([x, label], i) => {
    if (i % every === 0) g += `<text x="${x}" y="${H - M.b + 13}" text-anchor="middle">${label}</text>`;
  });
  const xl = META.pairs.length > 8 ? "layer pair t → t+1, by t" : "layer pair (t → t+1)";
  g += `<text x="${(M.l + W - M.r) / 2}" y="${H - 2}" text-anchor="middle">${xl}</text>`;
  if (yLabel) g += `<text transform="translate(10,${(M.t + H - M.b) / 2}) rotate(-90)" text-anchor="middle">${yLabel}</text>`;
  return g;
}
function logTicks(lo, hi) { // tick positions (log10 units) at 1, 2, 5 (or 1, 3; or 1) × 10^e
  const span = hi - lo;
  const mults = span > 2.5 ? [1] : span > 1.2 ? [1, 3] : [1, 2, 5];
  const out = [];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    for (const m of mults) {
      const v = e + Math.log10(m);
      if (v >= lo - 1e-9 && v <= hi + 1e-9) out.push(v);
    }
  }
  const step = Math.ceil(out.length / 6);
  return out.length >= 2 ? out.filter((_, i) => i % step === 0) : [lo, hi];
}
function tickLabel(x) {
  return x >= 1e-3 && x < 1e4 ? String(Number(x.toPrecision(2))) : x.toExponential(0).replace("e+", "e");
}
function svg(inner, h = H) { return `<svg viewBox="0 0 ${W} ${h}" role="img">${inner}</svg>`; }
const xOf = (i, n) => M.l + ((i + 0.5) * (W - M.l - M.r)) / n;
function hitAreas(n) {
  let g = "";
  for (let i = 0; i < n; i++) {
    const w = (W - M.l - M.r) / n;
    g += `<rect class="hit" data-pair="${i}" x="${M.l + i * w}" y="${M.t}" width="${w}" height="${H - M.t - M.b}" fill="transparent"><title>${pairLabel(META.pairs[i])}: click for its histogram</title></rect>`;
  }
  return g;
}

function chartCost() {
  const P = META.pairs, n = P.length;
  const qs = P.flatMap((p) => Object.values(p.quantiles)).filter((v) => v > 0);
  const steps = state.rows ? P.map((p, i) => state.rows[i + 1].step) : [];
  steps.forEach((s) => { if (s && s.cost > 0) qs.push(s.cost); });
  if (!qs.length) return '<p class="note">no costs</p>';
  let lo = Math.log10(Math.min(...qs)), hi = Math.log10(Math.max(...qs));
  if (hi - lo < 0.5) { lo -= 0.25; hi += 0.25; }
  const y = (v) => M.t + ((hi - Math.log10(Math.max(v, 10 ** lo))) / (hi - lo)) * (H - M.t - M.b);
  const ticks = logTicks(lo, hi).map((e) => [y(10 ** e), e]);
  const bw = Math.min(22, ((W - M.l - M.r) / n) * 0.6);
  let g = axes(P.map((p, i) => [xOf(i, n), tickPair(p)]), ticks, (e) => tickLabel(10 ** e), "pair cost");
  P.forEach((p, i) => {
    const q = p.quantiles, x = xOf(i, n);
    if (q.p50 === null) return;
    const focus = i === state.focusPair;
    g += `<rect x="${x - bw / 2}" y="${y(q.p95)}" width="${bw}" height="${Math.max(1, y(q.p5) - y(q.p95))}" fill="${C.blue}" opacity="0.15"/>
      <rect x="${x - bw / 2}" y="${y(q.p75)}" width="${bw}" height="${Math.max(1, y(q.p25) - y(q.p75))}" fill="${C.blue}" opacity="${focus ? 0.55 : 0.35}"/>
      <line x1="${x - bw / 2}" x2="${x + bw / 2}" y1="${y(q.p50)}" y2="${y(q.p50)}" stroke="${C.blue}" stroke-width="2"/>`;
    if (focus) g += `<rect x="${x - bw / 2 - 3}" y="${M.t}" width="${bw + 6}" height="${H - M.t - M.b}" fill="none" stroke="${C.sky}" stroke-dasharray="3 2"/>`;
  });
  const pts = steps.map((s, i) => (s && s.cost > 0 ? [xOf(i, n), y(s.cost)] : null));
  let d = "";
  pts.forEach((pt, i) => { if (pt) d += `${d && pts[i - 1] ? "L" : "M"}${pt[0].toFixed(1)},${pt[1].toFixed(1)}`; });
  if (d) g += `<path d="${d}" fill="none" stroke="${C.orange}" stroke-width="1.8"/>`;
  pts.forEach((pt, i) => { if (pt) g += `<circle cx="${pt[0]}" cy="${pt[1]}" r="3.2" fill="${C.orange}"><title>this path, ${pairLabel(P[i])}: ${fmt(steps[i].cost)}</title></circle>`; });
  g += hitAreas(n);
  const legend = `<div class="legend"><span><span class="sw" style="background:${C.blue}"></span>all matched pairs (folded cost)</span>
    ${state.rows ? `<span><span class="sw" style="background:${C.orange}"></span>this path's steps</span>` : ""}</div>`;
  return svg(g) + legend;
}

function chartHist() {
  const P = META.pairs, p = P[state.focusPair], E = META.bin_edges;
  $("hist-title").innerHTML = `Cost distribution, layer pair ${pairLabel(p)} <span class="sub">${F} features · click another pair above</span>`;
  const n = p.counts.length, top = Math.max(...p.counts, 1);
  const lo = Math.log10(E[0]), hi = Math.log10(E[E.length - 1]);
  const x = (v) => M.l + ((Math.log10(v) - lo) / (hi - lo)) * (W - M.l - M.r);
  const y = (c) => M.t + (1 - c / top) * (H - M.t - M.b);
  let g = "";
  for (const t of [0, 0.5, 1]) g += `<line x1="${M.l}" x2="${W - M.r}" y1="${y(t * top)}" y2="${y(t * top)}" stroke="#ddd" stroke-width="0.6"/><text x="${M.l - 4}" y="${y(t * top) + 3}" text-anchor="end">${Math.round(t * top)}</text>`;
  p.counts.forEach((c, i) => {
    const x0 = x(E[i]), x1 = x(E[i + 1]);
    if (c) g += `<rect x="${x0}" y="${y(c)}" width="${Math.max(0.5, x1 - x0 - 0.6)}" height="${y(0) - y(c)}" fill="${C.blue}" opacity="0.75"><title>${fmt(E[i])}–${fmt(E[i + 1])}: ${c}</title></rect>`;
  });
  for (const e of logTicks(lo, hi)) g += `<text x="${x(10 ** e)}" y="${H - M.b + 13}" text-anchor="middle">${tickLabel(10 ** e)}</text>`;
  g += `<text x="${(M.l + W - M.r) / 2}" y="${H - 2}" text-anchor="middle">pair cost (log scale)</text>
    <text transform="translate(10,${(M.t + H - M.b) / 2}) rotate(-90)" text-anchor="middle">features</text>`;
  const s = state.rows ? state.rows[state.focusPair + 1].step : null;
  if (s && s.cost > 0) {
    const xs = Math.min(Math.max(x(s.cost), M.l), W - M.r);
    g += `<line x1="${xs}" x2="${xs}" y1="${M.t}" y2="${H - M.b}" stroke="${C.orange}" stroke-width="2"/>
      <text x="${xs + (xs > W - 120 ? -4 : 4)}" y="${M.t + 10}" text-anchor="${xs > W - 120 ? "end" : "start"}" style="fill:${C.orange};paint-order:stroke;stroke:#fff;stroke-width:3px">this path: p${percentile(s.lk, s.cost)}</text>`;
  }
  return svg(g);
}

function chartBars(values, color, yMax, yFmt, yLabel, title) {
  const n = values.length;
  const y = (v) => M.t + (1 - v / yMax) * (H - M.t - M.b);
  const ticks = [0, 0.5, 1].map((t) => [y(t * yMax), t * yMax]);
  let g = axes(META.pairs.map((p, i) => [xOf(i, n), tickPair(p)]), ticks, yFmt, yLabel);
  const bw = Math.min(22, ((W - M.l - M.r) / n) * 0.6);
  values.forEach((v, i) => {
    if (v === null || v === undefined) return;
    const focus = i === state.focusPair;
    g += `<rect x="${xOf(i, n) - bw / 2}" y="${y(v)}" width="${bw}" height="${Math.max(0.8, y(0) - y(v))}" fill="${color}" opacity="${focus ? 1 : 0.75}"><title>${pairLabel(META.pairs[i])}: ${title(v)}</title></rect>`;
  });
  g += hitAreas(n);
  return svg(g);
}

function chartUnmatched() {
  const v = META.pairs.map((p) => p.unmatched_share);
  const max = Math.max(...v);
  const note = max === 0 ? '<p class="note">0 % in every pair: this matching is a bijection (every feature is paired).</p>' : "";
  return note + (max === 0 ? "" : chartBars(v, C.verm, Math.max(max * 1.1, 0.01), (x) => `${Math.round(x * 100)} %`, "unmatched", (x) => `${(x * 100).toFixed(1)} % unmatched`));
}

function chartScore() {
  const v = META.pairs.map((p) => p.matching_score);
  if (v.every((x) => x === null || x === undefined)) return '<p class="note">not measured in this run (set experiment.matching_score=true; needs one pass of the model over the data).</p>';
  return chartBars(v, C.blue, 1, (x) => x.toFixed(1), "score", (x) => `matching score ${x.toFixed(3)}`);
}

function chartExact() {
  const ex = META.exact;
  if (!ex.length) return '<p class="note">no exact LAPs in this run (experiment.exact_starts).</p>';
  const starts = META.exact_starts, n = LAYERS.length;
  const x = (L) => M.l + ((LAYERS.indexOf(L) + 0.5) * (W - M.l - M.r)) / n;
  const y = (v) => M.t + (1 - v) * (H - M.t - M.b);
  let g = "";
  for (const t of [0, 0.5, 1]) g += `<line x1="${M.l}" x2="${W - M.r}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd" stroke-width="0.6"/><text x="${M.l - 4}" y="${y(t) + 3}" text-anchor="end">${t}</text>`;
  const every = Math.ceil(n / 13);
  LAYERS.forEach((L, i) => { if (i % every === 0) g += `<text x="${x(L)}" y="${H - M.b + 13}" text-anchor="middle">${L}</text>`; });
  g += `<text x="${(M.l + W - M.r) / 2}" y="${H - 2}" text-anchor="middle">target layer</text>`;
  const cols = [C.blue, C.sky, C.green, C.purple, C.orange, C.verm];
  let legend = "";
  starts.forEach((s, k) => {
    const pts = ex.filter((e) => e.src === s).sort((a, b) => a.dst - b.dst);
    const col = cols[k % cols.length];
    const all = [[x(s), y(1)], ...pts.map((e) => [x(e.dst), y(e.agreement)])];
    g += `<path d="${all.map((p, i) => `${i ? "L" : "M"}${p[0].toFixed(1)},${p[1].toFixed(1)}`).join("")}" fill="none" stroke="${col}" stroke-width="1.6"/>`;
    pts.forEach((e) => { g += `<circle cx="${x(e.dst)}" cy="${y(e.agreement)}" r="2.8" fill="${col}"><title>L${s}→L${e.dst}: ${(e.agreement * 100).toFixed(1)} % agree</title></circle>`; });
    if (k < 8) legend += `<span><span class="sw" style="background:${col}"></span>from L${s}</span>`;
  });
  return svg(g) + `<div class="legend">${legend}</div>`;
}

function renderCharts() {
  $("chart-cost").innerHTML = chartCost();
  $("chart-hist").innerHTML = chartHist();
  $("chart-unmatched").innerHTML = chartUnmatched();
  $("chart-score").innerHTML = chartScore();
  $("chart-exact").innerHTML = chartExact();
}

// ---- search --------------------------------------------------------------------------------
const search = { items: [], active: -1, token: 0 };

function parseId(q) {
  const m = q.trim().match(/^L?(\d+)\s*[/:,\s]\s*#?(\d+)$/i);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

async function runSearch(q) {
  const tok = ++search.token;
  const id = parseId(q);
  const words = q.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return showResults([], "");
  if (id) {
    const [L, f] = id;
    if (!LAYERS.includes(L)) return showResults([], `no layer ${L}; layers: ${LAYERS.join(", ")}`);
    if (f >= F) return showResults([], `layer ${L} has features 0…${F - 1}`);
    await loadDescs([[L, f]]);
    if (tok === search.token) showResults([[L, f]], "", []);
    return;
  }
  if (/^\d+$/.test(q.trim())) { // a bare index: that feature in every layer
    const f = Number(q.trim());
    if (f >= F) return showResults([], `features are 0…${F - 1}`);
    await loadDescs(LAYERS.map((L) => [L, f]));
    if (tok === search.token) showResults(LAYERS.map((L) => [L, f]), "", []);
    return;
  }
  const chunks = Math.ceil(F / META.desc_chunk);
  const names = LAYERS.flatMap((L) => Array.from({ length: chunks }, (_, c) => `desc_${L}_${c}`));
  if (names.some((n) => !(n in store))) {
    showResults([], `loading descriptions (${names.length} files)…`);
    await Promise.all(names.map(load));
  }
  if (tok !== search.token) return;
  // rank: descriptions where the words come earliest first (a zoo description starts with the
  // feature's top tokens), then by layer and index
  let found = [];
  for (const L of LAYERS) {
    for (let c = 0; c < chunks; c++) {
      const d = store[`desc_${L}_${c}`];
      for (let i = 0; i < d.length; i++) {
        if (!d[i]) continue;
        const t = d[i].toLowerCase();
        let rank = 0;
        for (const w of words) {
          const at = t.indexOf(w);
          if (at < 0) { rank = -1; break; }
          rank += at;
        }
        if (rank >= 0) found.push([rank, L, c * META.desc_chunk + i]);
      }
    }
  }
  const total = found.length;
  found.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  const hits = found.slice(0, 200).map(([, L, f]) => [L, f]);
  found = null;
  showResults(hits, total ? (total > hits.length ? `${total} matches, first ${hits.length} shown` : `${total} matches`) : `no description contains “${esc(q)}”`, words);
}

function showResults(items, note, words = []) {
  search.items = items;
  search.active = items.length ? 0 : -1;
  search.words = words;
  const ul = $("results");
  ul.innerHTML = (note ? `<li class="note">${note}</li>` : "") + items.map(([L, f], i) =>
    `<li role="option" data-i="${i}" class="${i === 0 ? "active" : ""}"><b class="fid">L${L}/${f}</b><span class="d">${
      desc(L, f) === null ? "(no description)" : highlight(desc(L, f) || "", words)}</span></li>`).join("");
  ul.hidden = !items.length && !note;
}

function moveActive(d) {
  if (!search.items.length) return;
  search.active = (search.active + d + search.items.length) % search.items.length;
  document.querySelectorAll("#results li[data-i]").forEach((li) => li.classList.toggle("active", Number(li.dataset.i) === search.active));
  const li = document.querySelector("#results li.active");
  if (li) li.scrollIntoView({ block: "nearest" });
}

function pick(i) {
  const it = search.items[i];
  if (!it) return;
  state.words = search.words || [];
  $("results").hidden = true;
  $("q").blur();
  select(it[0], it[1]);
}

let timer = null;
$("q").addEventListener("input", (e) => {
  clearTimeout(timer);
  const q = e.target.value;
  timer = setTimeout(() => runSearch(q).catch((err) => showError(String(err.message || err))), parseId(q) ? 0 : 150);
});
$("q").addEventListener("keydown", async (e) => {
  if (e.key === "ArrowDown") { e.preventDefault(); moveActive(1); }
  else if (e.key === "ArrowUp") { e.preventDefault(); moveActive(-1); }
  else if (e.key === "Escape") { $("results").hidden = true; $("q").blur(); }
  else if (e.key === "Enter") {
    e.preventDefault();
    clearTimeout(timer);
    await runSearch(e.target.value).catch((err) => showError(String(err.message || err)));
    pick(Math.max(search.active, 0));
  }
});
$("results").addEventListener("mousedown", (e) => {
  const li = e.target.closest("li[data-i]");
  if (li) { e.preventDefault(); pick(Number(li.dataset.i)); }
});
$("q").addEventListener("blur", () => setTimeout(() => { $("results").hidden = true; }, 100));
$("q").addEventListener("focus", () => { if (search.items.length) $("results").hidden = false; });

// ---- mouse and keyboard --------------------------------------------------------------------
document.addEventListener("click", (e) => {
  const a = e.target.closest("a.fid");
  if (a) { e.preventDefault(); select(a.dataset.l, a.dataset.f); return; }
  const hit = e.target.closest("[data-pair]");
  if (hit) { state.focusPair = Number(hit.dataset.pair); renderCharts(); return; }
  const row = e.target.closest("table.path tr[data-l]");
  if (row && !e.target.closest("a")) {
    const r = state.rows.find((x) => x.layer === Number(row.dataset.l));
    if (r && r.f >= 0) select(r.layer, r.f);
  }
  if (!e.target.closest("#help") && e.target.id !== "help-btn") $("help").hidden = true;
});
$("help-btn").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });

function step(d) {
  if (!state.rows) return;
  const k = LAYERS.indexOf(state.L) + d;
  if (k < 0 || k >= LAYERS.length) return;
  const r = state.rows[k];
  if (r.f < 0) return showError(`L${state.L}/${state.f} has no partner in layer ${r.layer}`);
  select(r.layer, r.f);
}

document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
  const k = e.key;
  if (k === "/") { e.preventDefault(); $("q").focus(); $("q").select(); }
  else if (k === "ArrowDown" || k === "ArrowRight" || k === "j") { e.preventDefault(); step(1); }
  else if (k === "ArrowUp" || k === "ArrowLeft" || k === "k") { e.preventDefault(); step(-1); }
  else if (k === "[" && state.rows && state.f > 0) select(state.L, state.f - 1);
  else if (k === "]" && state.rows && state.f + 1 < F) select(state.L, state.f + 1);
  else if (k === "?") $("help").hidden = !$("help").hidden;
  else if (k === "Escape") $("help").hidden = true;
});

function fromHash() {
  const m = location.hash.match(/^#L(\d+)\/(\d+)$/);
  if (m) select(m[1], m[2], { push: false });
}
window.addEventListener("hashchange", fromHash);
window.addEventListener("popstate", fromHash);

async function renderExamples() { // where to start: the cheapest composed paths
  const ex = META.examples || [];
  if (!ex.length) return;
  await loadDescs(ex);
  if (state.rows) return; // a feature was picked meanwhile
  const items = ex.map(([L, f]) => `<div>${fid(L, f)}</div><div>${descHTML(L, f)}</div>`).join("");
  $("feature").insertAdjacentHTML("beforeend", `<h3 class="examples">Start with the cheapest paths
    <span class="sub">from L${ex[0][0]}: lowest summed step cost through every layer</span></h3>
    <div class="nb">${items}</div>`);
}

// ---- start ---------------------------------------------------------------------------------
(function start() {
  $("run-title").textContent = META.title;
  const s = META.settings || {};
  const parts = Object.entries(s).map(([k, v]) => `${esc(k)} <b>${esc(typeof v === "object" ? JSON.stringify(v) : v)}</b>`);
  parts.push(`layers <b>${LAYERS[0]}…${LAYERS[LAYERS.length - 1]}</b> (${LAYERS.length})`, `width <b>${F}</b>`);
  if (META.judge_note) parts.push(`judge: ${esc(META.judge_note)}`);
  $("settings").innerHTML = parts.join(" · ");
  renderCharts();
  renderExamples().catch(() => {}).finally(() => { status("ready"); fromHash(); });
})();
