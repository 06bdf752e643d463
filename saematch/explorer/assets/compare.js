// saematch compare page: two dictionaries side by side (saematch.compare.compare). Each row is one
// pair of the exact matching a -> b, or a feature of the wide side the matching leaves free.
// "shared" = kept by the partial matching at the rotation null (never a forced pair); families:
// the wide side's features under the narrow feature they split. Runs after common.js.

const NA = META.a.width, NB = META.b.width;
const WIDE = META.wide, NARROW = WIDE === "a" ? "b" : "a";
const PAGE = 200; // rows drawn at a time
const STATUS = {
  all: ["every feature of both", () => true],
  shared: ["shared pairs", (r) => r.a >= 0 && D.shared[r.a] >= 0],
  "unshared-a": ["unshared in a", (r) => r.a >= 0 && D.shared[r.a] < 0],
  "unshared-b": ["unshared in b", (r) => r.b >= 0 && D.sharedInv[r.b] < 0],
  forced: ["forced pairs (exact, not shared)", (r) => r.a >= 0 && r.b >= 0 && D.shared[r.a] !== r.b],
  split: ["narrow features with a family of ≥ 2", (r) => narrowOf(r) >= 0 && D.size[narrowOf(r)] >= 2],
};
const D = {}; // the arrays of compare_data/pairs.js and what is derived from them
const view = { rows: [], shown: PAGE, sel: null, words: [], match: null };

const narrowOf = (r) => (NARROW === "a" ? r.a : r.b);
const wideOf = (r) => (WIDE === "a" ? r.a : r.b);
const width = (s) => (s === "a" ? NA : NB);

function prepare(p) {
  D.perm = Int32Array.from(p.perm);
  D.shared = Int32Array.from(p.shared);
  D.cost = floats(p.cost);
  D.cos = Object.fromEntries(Object.entries(p.cos).map(([k, v]) => [k, floats(v)]));
  D.conf = p.conf ? floats(p.conf) : null;
  D.parent = Int32Array.from(p.parent);
  D.fconf = floats(p.fconf);
  D.inv = new Int32Array(NB).fill(-1);
  D.perm.forEach((j, i) => { if (j >= 0) D.inv[j] = i; });
  D.sharedInv = new Int32Array(NB).fill(-1);
  D.shared.forEach((j, i) => { if (j >= 0) D.sharedInv[j] = i; });
  D.size = new Int32Array(Math.min(NA, NB));
  D.members = new Map(); // narrow feature -> wide features of its family
  D.parent.forEach((n, w) => {
    if (n < 0) return;
    D.size[n]++;
    if (!D.members.has(n)) D.members.set(n, []);
    D.members.get(n).push(w);
  });
  D.rows = [];
  for (let i = 0; i < NA; i++) D.rows.push({ a: i, b: D.perm[i] });
  for (let j = 0; j < NB; j++) if (D.inv[j] < 0) D.rows.push({ a: -1, b: j });
}

// ---- descriptions --------------------------------------------------------------------------
const descName = (s, f) => `desc_${s}_${Math.floor(f / META.desc_chunk)}`;
function desc(s, f) {
  if (!META.described[s]) return null;
  const d = store[descName(s, f)];
  return d ? d[f % META.desc_chunk] : undefined;
}
function loadDescs(items) { // [[side, feature]]
  const names = [...new Set(items.filter(([s, f]) => f >= 0 && META.described[s]).map(([s, f]) => descName(s, f)))];
  return Promise.all(names.map(load));
}
function loadAllDescs() {
  const names = ["a", "b"].filter((s) => META.described[s]).flatMap((s) =>
    Array.from({ length: Math.ceil(width(s) / META.desc_chunk) }, (_, c) => `desc_${s}_${c}`));
  return Promise.all(names.map(load));
}
function descHTML(s, f) {
  if (f < 0) return "";
  const d = desc(s, f);
  if (d === undefined) return `<span class="muted">…</span>`;
  if (d === null) return `<span class="muted">(no description)</span>`;
  return `<span class="desc" title="${esc(d)}">${highlight(d, view.words)}</span>`;
}

// ---- formatting ----------------------------------------------------------------------------
function fid(s, f) {
  if (f === undefined || f === null || f < 0) return `<span class="fid none">none</span>`;
  return `<a class="fid" href="#${s}/${f}" data-s="${s}" data-f="${f}">${s}/${f}</a>`;
}
function statusOf(r) { // [css class, text] of a row
  if (r.a < 0) return D.sharedInv[r.b] >= 0 ? ["shared", "shared (other row)"] : ["unshared", "unshared in b"];
  const s = D.shared[r.a];
  if (s >= 0 && s === r.b) return ["shared", "shared"];
  if (s >= 0) return ["forced", `forced; shared with b/${s}`];
  if (r.b >= 0 && D.sharedInv[r.b] >= 0) return ["forced", "forced; a unshared"];
  return r.b >= 0 ? ["unshared", "unshared in both"] : ["unshared", "unshared in a"];
}
const pillOf = ([cls, text]) => `<span class="pill st-${cls}">${esc(text)}</span>`;
const pairVal = (arr, r) => (r.a >= 0 && r.b >= 0 ? arr[r.a] : NaN);

// ---- table ---------------------------------------------------------------------------------
function filtered() {
  const test = STATUS[$("status-filter").value][1];
  const min = Number($("min-cos").value) || 0;
  const dec = D.cos.decoder || null;
  let rows = D.rows.filter((r) => test(r) && (min <= 0 || (dec && pairVal(dec, r) >= min)));
  if (view.match) rows = rows.filter(view.match);
  const key = $("sort").value;
  const big = (x) => (Number.isNaN(x) ? -Infinity : x);
  const small = (x) => (Number.isNaN(x) ? Infinity : x);
  const by = {
    "cost-desc": (r) => -big(pairVal(D.cost, r)),
    "cost-asc": (r) => small(pairVal(D.cost, r)),
    "cos-asc": (r) => small(dec ? pairVal(dec, r) : NaN),
    "family-desc": (r) => -(narrowOf(r) >= 0 ? D.size[narrowOf(r)] : 0),
  }[key];
  if (by) rows = rows.map((r) => [by(r), r]).sort((x, y) => x[0] - y[0]).map((x) => x[1]);
  return rows;
}

function renderTable() {
  view.rows = filtered();
  const rows = view.rows.slice(0, view.shown);
  const parts = META.parts;
  const conf = META.has_pair_confidence;
  const head = `<thead><tr><th>a (${NA})</th><th>b (${NB})</th><th>cost</th>${parts.map((p) =>
    `<th>|cos| ${esc(p)}</th>`).join("")}${conf ? "<th>confidence</th>" : ""}<th>status</th><th>family</th></tr></thead>`;
  const body = rows.map((r) => {
    const n = narrowOf(r);
    const sel = view.sel && ((view.sel.s === "a" && view.sel.f === r.a) || (view.sel.s === "b" && view.sel.f === r.b));
    return `<tr class="${sel ? "selected" : ""}" data-a="${r.a}" data-b="${r.b}">
      <td>${fid("a", r.a)} ${META.described.a ? descHTML("a", r.a) : ""}</td>
      <td>${fid("b", r.b)} ${META.described.b ? descHTML("b", r.b) : ""}</td>
      <td class="num">${fmt(pairVal(D.cost, r))}</td>
      ${parts.map((p) => `<td class="num">${fmt(pairVal(D.cos[p], r))}</td>`).join("")}
      ${conf ? `<td class="num">${fmt(pairVal(D.conf, r))}</td>` : ""}
      <td>${pillOf(statusOf(r))}</td>
      <td class="num">${n >= 0 ? D.size[n] : "—"}</td></tr>`;
  }).join("");
  $("pairs").innerHTML = head + `<tbody>${body}</tbody>`;
  const total = view.rows.length;
  $("count").textContent = `${total} rows` + (total > rows.length ? `, first ${rows.length} shown` : "");
  $("more").hidden = total <= rows.length;
}

// ---- the selected feature, side by side ----------------------------------------------------
function sideCard(s, f) {
  const other = s === "a" ? "b" : "a";
  const exact = s === "a" ? D.perm[f] : D.inv[f];
  const shared = s === "a" ? D.shared[f] : D.sharedInv[f];
  return `<div><h3>${esc(s)} · ${esc(META[s].ref || META[s].name)}</h3>
    <div>${fid(s, f)}</div>
    <div class="bigdesc">${META.described[s] ? descHTML(s, f) : '<span class="muted">(no descriptions)</span>'}</div>
    <div class="nb"><span class="k">exact partner</span><span>${fid(other, exact)}</span>
      <span class="k">shared partner</span><span>${shared >= 0 ? fid(other, shared) : '<span class="flag">unshared</span>'}</span></div></div>`;
}

function familyHTML(n) {
  const members = D.members.get(n) || [];
  const exact = NARROW === "a" ? D.perm[n] : D.inv[n];
  const shared = NARROW === "a" ? D.shared[n] : D.sharedInv[n];
  if (!members.length) return `<p class="muted fam">${NARROW}/${n} has no family on side ${WIDE} (no wide feature beats κ* with it).</p>`;
  const rows = members.map((w) => `<tr><td>${fid(WIDE, w)}</td><td class="num">${fmt(D.fconf[w])}</td>
    <td>${w === exact ? '<span class="same" title="the exact matching\'s partner">exact</span>' : ""}
    ${w === shared ? '<span class="same" title="the shared partner">shared</span>' : ""}</td></tr>`).join("");
  return `<div class="fam"><h3>Family of ${fid(NARROW, n)} on side ${WIDE} <span class="sub">${members.length}
    member${members.length > 1 ? "s" : ""} · confidence = κ margin over the runner-up parent</span></h3>
    <table><thead><tr><th>member</th><th>confidence</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

function renderDetail() {
  const { s, f } = view.sel;
  const a = s === "a" ? f : D.inv[f];
  const b = s === "b" ? f : D.perm[f];
  const r = { a, b };
  const parts = META.parts.map((p) => `|cos| ${esc(p)} <b>${fmt(pairVal(D.cos[p], r))}</b>`).join(" · ");
  const conf = META.has_pair_confidence ? ` · confidence <b>${fmt(pairVal(D.conf, r))}</b>` : "";
  const n = narrowOf(r);
  const w = wideOf(r);
  const parent = w >= 0 ? D.parent[w] : -1;
  const member = w >= 0 && parent >= 0 && parent !== n
    ? `<p>${fid(WIDE, w)} belongs to the family of ${fid(NARROW, parent)} (confidence ${fmt(D.fconf[w])}).</p>` : "";
  $("detail").innerHTML = `<h2>${a >= 0 ? `a/${a}` : "—"} ↔ ${b >= 0 ? `b/${b}` : "—"}</h2>
    <div class="stats">${pillOf(statusOf(r))}<span>cost <b>${fmt(pairVal(D.cost, r))}</b></span><span>${parts}${conf}</span></div>
    <div class="side">${a >= 0 ? sideCard("a", a) : '<div class="muted">no feature of a: the exact matching leaves this b feature free</div>'}
      ${b >= 0 ? sideCard("b", b) : '<div class="muted">no feature of b: the exact matching leaves this a feature free</div>'}</div>
    ${n >= 0 ? familyHTML(n) : ""}${member}`;
}

async function select(s, f, { push = true } = {}) {
  f = Number(f);
  if (s !== "a" && s !== "b") return showError(`no side ${s}: the sides are a and b`);
  if (!(Number.isInteger(f) && f >= 0 && f < width(s))) return showError(`feature ${f} is out of range: side ${s} has features 0…${width(s) - 1}`);
  showError("");
  view.sel = { s, f };
  const a = s === "a" ? f : D.inv[f], b = s === "b" ? f : D.perm[f];
  const fam = narrowOf({ a, b }) >= 0 ? (D.members.get(narrowOf({ a, b })) || []).map((w) => [WIDE, w]) : [];
  await loadDescs([["a", a], ["b", b], ...fam]);
  if (push && location.hash !== `#${s}/${f}`) history.pushState(null, "", `#${s}/${f}`);
  renderDetail();
  renderTable();
}

// ---- search, filters, keys -----------------------------------------------------------------
function parseId(q) {
  const m = q.trim().match(/^([ab])\s*[/:#\s]\s*(\d+)$/i);
  return m ? [m[1].toLowerCase(), Number(m[2])] : null;
}

async function runSearch(q) {
  const id = parseId(q);
  if (id) { view.match = null; view.words = []; return select(id[0], id[1]); }
  const words = q.toLowerCase().split(/\s+/).filter(Boolean);
  view.words = words;
  if (!words.length) { view.match = null; return renderTable(); }
  if (!META.described.a && !META.described.b) {
    view.match = null;
    return showError("this comparison has no descriptions: search by a/17 or b/40");
  }
  showError("");
  await loadAllDescs();
  const has = (s, f) => {
    const d = f >= 0 ? desc(s, f) : null;
    if (!d) return false;
    const t = d.toLowerCase();
    return words.every((w) => t.includes(w));
  };
  view.match = (r) => has("a", r.a) || has("b", r.b);
  view.shown = PAGE;
  await loadDescs(filtered().slice(0, PAGE).flatMap((r) => [["a", r.a], ["b", r.b]]));
  renderTable();
}

function step(d) {
  if (!view.rows.length) return;
  let k = view.rows.findIndex((r) => view.sel && ((view.sel.s === "a" && r.a === view.sel.f) || (view.sel.s === "b" && r.b === view.sel.f)));
  k = Math.min(Math.max(k + d, 0), view.rows.length - 1);
  const r = view.rows[k];
  if (k >= view.shown) view.shown = k + 1;
  if (r.a >= 0) select("a", r.a); else select("b", r.b);
}

function fromHash() {
  const m = location.hash.match(/^#([ab])\/(\d+)$/);
  if (m) select(m[1], m[2], { push: false }).catch((e) => showError(String(e.message || e)));
}

function settingsLine() {
  const s = META.summary, c = META.counts;
  const pct = (x) => (x === null || x === undefined ? "—" : `${(100 * x).toFixed(1)} %`);
  const items = [
    `a <b>${esc(META.a.ref || META.a.name)}</b> (${NA})`,
    `b <b>${esc(META.b.ref || META.b.name)}</b> (${NB})`,
    ...META.parts.map((p) => `PW-MCC ${esc(p)} <b>${fmt(s[`pwmcc_${p}`])}</b>`),
    `shared <b>${c.shared}</b> (${pct(s.shared_share)} of the narrow side; κ* ${fmt(s.kappa_star)})`,
    `unshared a <b>${c.unshared_a}</b>, b <b>${c.unshared_b}</b>`,
    `families on ${WIDE}: <b>${c.family_members}</b> members, <b>${c.family_splits}</b> splits`,
    `exact matching ${s.mse_certified === true ? "<b>certified</b>" : s.mse_certified === false ? "<b>NOT certified</b>" : "not checked"}`,
  ];
  return items.join(" · ");
}

async function start() {
  $("run-title").textContent = META.title;
  $("settings").innerHTML = settingsLine();
  status("loading pairs");
  prepare(await load("pairs"));
  $("status-filter").innerHTML = Object.entries(STATUS).map(([k, [label, test]]) =>
    `<option value="${k}">${esc(label)} (${D.rows.filter(test).length})</option>`).join("");
  await loadDescs(D.rows.slice(0, PAGE).flatMap((r) => [["a", r.a], ["b", r.b]]));
  renderTable();
  for (const id of ["status-filter", "min-cos", "sort"]) { // "change": a select picked by script
    for (const ev of ["input", "change"]) $(id).addEventListener(ev, () => { view.shown = PAGE; renderTable(); });
  }
  $("more").addEventListener("click", async () => {
    view.shown += PAGE;
    await loadDescs(view.rows.slice(0, view.shown).flatMap((r) => [["a", r.a], ["b", r.b]]));
    renderTable();
  });
  $("q").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); runSearch(e.target.value).catch((err) => showError(String(err.message || err))); }
    else if (e.key === "Escape") $("q").blur();
  });
  document.addEventListener("click", (e) => {
    const a = e.target.closest("a.fid");
    if (a) { e.preventDefault(); select(a.dataset.s, a.dataset.f); return; }
    const tr = e.target.closest("table.pairs tbody tr");
    if (tr) { const a2 = Number(tr.dataset.a); if (a2 >= 0) select("a", a2); else select("b", tr.dataset.b); }
    if (!e.target.closest("#help") && e.target.id !== "help-btn") $("help").hidden = true;
  });
  $("help-btn").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "/") { e.preventDefault(); $("q").focus(); $("q").select(); }
    else if (e.key === "ArrowDown" || e.key === "j") { e.preventDefault(); step(1); }
    else if (e.key === "ArrowUp" || e.key === "k") { e.preventDefault(); step(-1); }
    else if (e.key === "?") $("help").hidden = !$("help").hidden;
    else if (e.key === "Escape") $("help").hidden = true;
  });
  window.addEventListener("hashchange", fromHash);
  window.addEventListener("popstate", fromHash);
  status("ready");
  fromHash();
}

function status(msg) {
  $("status").textContent = `${msg} · data in ${META.data_dir}/ · page written ${META.generated}`;
}

start().catch((err) => showError(String(err.message || err)));
