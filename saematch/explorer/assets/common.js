// saematch pages (explorer.html, compare.html): what both share. The page's summary is the JSON
// in <script id="meta">; its data files beside it are loaded with <script src> (works from
// file://, where fetch() does not), each calls SAEX.put(name, data). Text from data files is
// only ever inserted through esc() / highlight().
"use strict";

const META = JSON.parse(document.getElementById("meta").textContent);
const C = { blue: "#0072B2", sky: "#56B4E9", orange: "#E69F00", green: "#009E73",
  verm: "#D55E00", purple: "#CC79A7", grey: "#7A7A7A" };
const $ = (id) => document.getElementById(id);

// ---- data loading ------------------------------------------------------------------------
const store = {};
const waiting = {};
const pending = {};
window.SAEX = {
  put(name, data) {
    store[name] = data;
    (waiting[name] || []).forEach((fn) => fn(data));
    delete waiting[name];
  },
};

function load(name) {
  if (name in store) return Promise.resolve(store[name]);
  if (pending[name]) return pending[name];
  const file = `${META.data_dir}/${name}.js`;
  pending[name] = new Promise((resolve, reject) => {
    (waiting[name] = waiting[name] || []).push(resolve);
    const s = document.createElement("script");
    s.src = file;
    s.charset = "utf-8";
    s.onload = () => { if (!(name in store)) reject(new Error(`${file} did not hold ${name}`)); };
    s.onerror = () => {
      delete pending[name];
      reject(new Error(`cannot read ${file}: keep the folder ${META.data_dir}/ beside this page`));
    };
    document.head.appendChild(s);
  });
  return pending[name];
}

function floats(a) { // JSON nulls (unmatched, not finite) become NaN
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] === null ? NaN : a[i];
  return out;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
function fmt(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return "—";
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 1e-3 && a < 1e4 ? x.toPrecision(3) : x.toExponential(2);
}

function highlight(text, words) {
  // find the words in the text itself, then escape: matching the escaped text marked the
  // insides of entities ("&amp;" for "amp") and of earlier <mark> tags
  const s = String(text);
  const marked = new Array(s.length).fill(false);
  for (const w of words || []) {
    if (!w) continue;
    const re = new RegExp(w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gi");
    for (const m of s.matchAll(re)) marked.fill(true, m.index, m.index + m[0].length);
  }
  let h = "";
  for (let i = 0, j = 0; i < s.length; i = j) {
    while (j < s.length && marked[j] === marked[i]) j++;
    h += marked[i] ? `<mark>${esc(s.slice(i, j))}</mark>` : esc(s.slice(i, j));
  }
  return h;
}

function showError(msg) { const e = $("error"); e.textContent = msg; e.hidden = !msg; }
