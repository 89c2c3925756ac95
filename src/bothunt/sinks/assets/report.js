// The report app: reads the JSON block, filters and sorts in memory, renders rows in chunks as they
// scroll into view, and builds a finding's details (plots, evidence, guide, pivots) only when opened.
// Data reaches the page only through textContent and attribute values, never as markup.
const T_START = performance.now();
const DATA = JSON.parse(document.getElementById('bothunt-data').textContent);
const T_PARSED = performance.now();
// Pivot queries travel as indexes into one table of distinct lines (their boilerplate repeats).
DATA.findings.forEach(function (f) {
  (f.pv || []).forEach(function (p) { p[3] = p[3].map(function (i) { return DATA.lines[i]; }).join('\n'); });
});
const F = DATA.findings, H = DATA.hosts, SEV = ['info', 'low', 'medium', 'high', 'critical'];
const CHUNK = 100;
const state = { sev: new Set(SEV), det: '', host: '', q: '', sort: 'sev', asc: false };
let filtered = [], rendered = 0, hostsRendered = 0, hostsBuilt = false;
const $ = function (id) { return document.getElementById(id); };

function el(tag, attrs) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const k of Object.keys(attrs)) {
      const v = attrs[k];
      if (v === undefined || v === null) continue;
      if (k === 'text') e.textContent = String(v);
      else if (k === 'class') e.className = v;
      else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, String(v));
    }
  }
  for (let i = 2; i < arguments.length; i++) {
    const c = arguments[i];
    if (c === null || c === undefined) continue;
    e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return e;
}

function internal(f) { return f.role === 'target' ? (f.dst || '') : (f.host || f.src || ''); }
function remote(f) {
  if (f.role === 'target') return f.src || (f.ev && f.ev.distinct_sources ? f.ev.distinct_sources + ' sources' : '');
  const r = f.dom || f.dst || '';
  return r && f.port !== null && f.port !== undefined ? r + ':' + f.port : r;
}
function sevBadge(sev) { return el('span', { class: 'sev sev-' + sev, text: sev }); }

F.forEach(function (f, i) {
  f._i = i;
  f._rank = SEV.indexOf(f.sev);
  f._t = Date.parse(f.first) || 0;
  f._int = internal(f);
  f._rem = remote(f);
  f._hostText = [f.host, f.src, f.dst, H[f.hk] ? H[f.hk].label : ''].join(' ').toLowerCase();
  f._text = [f.title, f.host, f.src, f.dst, f.dom, f.proc, f.user, f.det, f.id].join(' ').toLowerCase();
});

// -- summary and filters ---------------------------------------------------------------------------

function countBy(key) {
  const m = new Map();
  F.forEach(function (f) { m.set(f[key], (m.get(f[key]) || 0) + 1); });
  return m;
}

function buildSummary() {
  const meta = DATA.meta;
  $('report-title').textContent = meta.title;
  $('report-meta').textContent = meta.line;
  const sev = countBy('sev'), det = countBy('det'), box = $('summary');
  const card = function (title, entries) {
    const ul = el('ul');
    entries.forEach(function (e) { ul.appendChild(el('li', null, e[0], el('span', { text: e[1] }))); });
    return el('div', { class: 'card' }, el('h3', { text: title }), ul);
  };
  box.appendChild(card('By severity', SEV.slice().reverse().filter(function (s) { return sev.get(s); })
    .map(function (s) { return [sevBadge(s), String(sev.get(s))]; })));
  box.appendChild(card('By detection', Array.from(det.entries()).sort(function (a, b) { return b[1] - a[1]; })
    .map(function (e) { return [el('button', { type: 'button', class: 'det', text: e[0], onclick: function () { setFilter({ det: e[0] }); } }), String(e[1])]; })));
  box.appendChild(card('Hosts by combined score', H.filter(function (h) { return h.scored; }).slice(0, 8)
    .map(function (h) {
      return [el('button', { type: 'button', text: h.label, onclick: function () { showHost(h.i); } }),
        h.score.toFixed(2) + ' ' + h.sev];
    })));
  box.appendChild(card('Report', [['findings', String(F.length)], ['hosts', String(H.filter(function (h) { return h.scored; }).length)],
    ['generated', meta.generated]]));
}

function buildFilters() {
  const fs = $('f-sev');
  SEV.slice().reverse().forEach(function (s) {
    const cb = el('input', { type: 'checkbox', value: s, checked: 'checked', onchange: function () {
      if (cb.checked) state.sev.add(s); else state.sev.delete(s);
      apply();
    } });
    fs.appendChild(el('label', null, cb, s));
  });
  const det = $('f-det');
  Array.from(countBy('det').keys()).sort().forEach(function (d) { det.appendChild(el('option', { value: d, text: d })); });
  det.addEventListener('change', function () { state.det = det.value; apply(); });
  const dl = $('host-list');
  H.slice(0, 300).forEach(function (h) { dl.appendChild(el('option', { value: h.label })); });
  let timer = null;
  const later = function () { clearTimeout(timer); timer = setTimeout(apply, 120); };
  $('f-host').addEventListener('input', function (e) { state.host = e.target.value.trim().toLowerCase(); later(); });
  $('f-q').addEventListener('input', function (e) { state.q = e.target.value.trim().toLowerCase(); later(); });
  $('f-reset').addEventListener('click', function () { setFilter({ det: '', host: '', q: '', sev: SEV }); });
  document.querySelectorAll('th[data-sort]').forEach(function (th) {
    th.addEventListener('click', function () {
      const k = th.dataset.sort;
      if (state.sort === k) state.asc = !state.asc; else { state.sort = k; state.asc = k === 'title' || k === 'det' || k === 'host' || k === 'remote'; }
      apply();
    });
  });
}

function setFilter(o) {
  if (o.det !== undefined) { state.det = o.det; $('f-det').value = o.det; }
  if (o.host !== undefined) { state.host = o.host.toLowerCase(); $('f-host').value = o.host; }
  if (o.q !== undefined) { state.q = o.q.toLowerCase(); $('f-q').value = o.q; }
  if (o.sev !== undefined) {
    state.sev = new Set(o.sev);
    $('f-sev').querySelectorAll('input').forEach(function (cb) { cb.checked = state.sev.has(cb.value); });
  }
  showView('findings');
  apply();
}

const CMP = {
  sev: function (a, b) { return a._rank - b._rank || a.score - b.score || b._i - a._i; },
  score: function (a, b) { return a.score - b.score || b._i - a._i; },
  det: function (a, b) { return a.det < b.det ? -1 : a.det > b.det ? 1 : b._i - a._i; },
  host: function (a, b) { return a._int < b._int ? -1 : a._int > b._int ? 1 : b._i - a._i; },
  remote: function (a, b) { return a._rem < b._rem ? -1 : a._rem > b._rem ? 1 : b._i - a._i; },
  title: function (a, b) { return a.title < b.title ? -1 : a.title > b.title ? 1 : b._i - a._i; },
  first: function (a, b) { return a._t - b._t || b._i - a._i; },
};

function apply() {
  const t0 = performance.now();
  filtered = F.filter(function (f) {
    return state.sev.has(f.sev) && (!state.det || f.det === state.det)
      && (!state.host || f._hostText.indexOf(state.host) >= 0) && (!state.q || f._text.indexOf(state.q) >= 0);
  });
  const cmp = CMP[state.sort] || CMP.sev, sign = state.asc ? 1 : -1;
  filtered.sort(function (a, b) { return sign * cmp(a, b); });
  document.querySelectorAll('th[data-sort]').forEach(function (th) {
    th.classList.toggle('sorted', th.dataset.sort === state.sort);
    th.classList.toggle('asc', th.dataset.sort === state.sort && state.asc);
  });
  $('count').textContent = 'Showing ' + filtered.length + ' of ' + F.length + ' findings';
  $('rows').replaceChildren();
  rendered = 0;
  renderMore();
  return performance.now() - t0;
}

// -- findings table -------------------------------------------------------------------------------

function renderMore() {
  const body = $('rows'), end = Math.min(rendered + CHUNK, filtered.length), frag = document.createDocumentFragment();
  for (let i = rendered; i < end; i++) frag.appendChild(row(filtered[i]));
  body.appendChild(frag);
  rendered = end;
  $('more').textContent = rendered < filtered.length ? (filtered.length - rendered) + ' more below (scroll)' : '';
}

function row(f) {
  const tr = el('tr', { class: 'row', 'data-id': f.id, 'data-i': f._i },
    el('td', null, sevBadge(f.sev)), el('td', { text: f.score.toFixed(2) }), el('td', { class: 'det', text: f.det }),
    el('td', { text: f._int, title: f._int }), el('td', { text: f._rem, title: f._rem }),
    el('td', { text: f.title, title: f.title }), el('td', { text: (f.first || '').replace('T', ' ').slice(0, 19) }));
  tr.addEventListener('click', function () { toggle(tr, f); });
  return tr;
}

function toggle(tr, f) {
  const next = tr.nextSibling;
  if (next && next.classList && next.classList.contains('details')) {
    next.remove();
    tr.classList.remove('open');
    return null;
  }
  const d = el('tr', { class: 'details', 'data-id': f.id }, el('td', { colspan: 7 }, details(f)));
  tr.after(d);
  tr.classList.add('open');
  return d;
}

function entities(f) {
  const dl = el('dl', { class: 'entities' });
  [['finding id', f.id], ['detection', f.det], ['score', f.score.toFixed(4)], ['first seen', f.first], ['last seen', f.last],
    ['host', f.host], ['address', f.src], ['user', f.user], ['process', f.proc], ['remote address', f.dst],
    ['remote port', f.port], ['domain', f.dom], ['techniques', (f.tech || []).join(', ')]]
    .forEach(function (e) {
      if (e[1] === null || e[1] === undefined || e[1] === '') return;
      dl.appendChild(el('dt', { text: e[0] }));
      dl.appendChild(el('dd', { text: e[1] }));
    });
  return dl;
}

function evidenceTable(ev) {
  const t = el('table', { class: 'evidence' });
  Object.keys(ev || {}).forEach(function (k) {
    const v = ev[k];
    const text = v !== null && typeof v === 'object' ? JSON.stringify(v).replace(/,"/g, ', "') : String(v);
    t.appendChild(el('tr', null, el('td', { text: k }), el('td', { class: 'v', text: text })));
  });
  return t;
}

function fill(tpl, vals) {
  return tpl.replace(/\{([a-z_]+)\}/g, function (m, k) { return Object.prototype.hasOwnProperty.call(vals, k) ? vals[k] : m; });
}

function guide(f) {
  const g = DATA.guides[f.g];
  const box = el('div', { class: 'guide', 'data-guide': f.g });
  if (!g) return box;
  box.appendChild(el('p', { class: 'guide-summary', text: fill(g.summary, f.gv) }));
  g.sections.forEach(function (sec) {
    const ul = el('ul');
    sec[1].forEach(function (line) { ul.appendChild(el('li', { text: fill(line, f.gv) })); });
    box.appendChild(el('h4', { text: sec[0] }));
    box.appendChild(ul);
  });
  return box;
}

function pivot(p) {
  const code = el('code', { text: p[3] });
  const btn = el('button', { type: 'button', text: 'Copy', onclick: function () {
    if (navigator.clipboard) navigator.clipboard.writeText(p[3]).catch(function () {});
    const r = document.createRange(); r.selectNodeContents(code);
    const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(r);
  } });
  return el('div', { class: 'pivot', 'data-lang': p[2] }, el('div', null, el('strong', { text: p[0] }), ' \u2014 ', p[1] + ' ', btn),
    el('pre', null, code));
}

function details(f) {
  const box = el('div', { class: 'finding-details' });
  box.appendChild(el('h2', { text: f.title }));
  box.appendChild(el('p', { class: 'expl', text: f.expl }));
  const h = H[f.hk];
  if (h && h.scored && h.findings.length > 1) {
    box.appendChild(el('p', null, 'This host has ' + h.findings.length + ' findings (' + h.detections.join(', ') + '), combined score ' +
      h.score.toFixed(2) + '. ', el('button', { type: 'button', class: 'link', text: 'Open the host view', onclick: function (e) { e.stopPropagation(); showHost(h.i); } })));
  }
  box.appendChild(entities(f));
  box.appendChild(el('h3', { text: 'Evidence' }));
  if (f.plot) box.appendChild(renderPlot(f.plot));
  else if (f.miss && f.miss.length) box.appendChild(el('p', { class: 'missing', text: 'No picture: the evidence lacks ' + f.miss.join(', ') + '.' }));
  box.appendChild(evidenceTable(f.ev));
  box.appendChild(el('h3', { text: 'Investigation guide and response playbook' }));
  box.appendChild(guide(f));
  box.appendChild(el('h3', { text: 'Pivot queries' }));
  (f.pv || []).forEach(function (p) { box.appendChild(pivot(p)); });
  box.addEventListener('click', function (e) { e.stopPropagation(); });
  return box;
}

// -- host view ------------------------------------------------------------------------------------

function renderHostsMore() {
  const box = $('hosts'), end = Math.min(hostsRendered + 50, H.length);
  for (let i = hostsRendered; i < end; i++) box.appendChild(hostCard(H[i]));
  hostsRendered = end;
  $('hosts-more').textContent = hostsRendered < H.length ? (H.length - hostsRendered) + ' more hosts below (scroll)' : '';
}

function hostCard(h) {
  const card = el('section', { class: 'host', 'data-host': h.i, id: 'host-' + h.i });
  const head = el('header', null, sevBadge(h.sev), el('span', { class: 'name', text: h.label }),
    el('span', { text: h.scored ? 'combined score ' + h.score.toFixed(2) : 'not scored' }),
    el('span', { class: 'muted', text: h.findings.length + ' finding(s): ' + h.detections.join(', ') }),
    el('span', { class: 'muted', text: (h.addresses || []).join(', ') }));
  card.appendChild(head);
  head.addEventListener('click', function () { toggleHost(card, h); });
  return card;
}

function toggleHost(card, h) {
  const open = card.querySelector('.body');
  if (open) { open.remove(); return; }
  const rows = h.findings.map(function (i) { return F[i]; });
  const body = el('div', { class: 'body' });
  if (h.scored) body.appendChild(el('p', { class: 'muted', text: 'Per detection: ' + Object.keys(h.per).map(function (k) { return k + ' ' + h.per[k].toFixed(2); }).join(', ') }));
  body.appendChild(hostTimeline(rows));
  const ul = el('ul', { class: 'hf' });
  rows.forEach(function (f) {
    ul.appendChild(el('li', null, sevBadge(f.sev), ' ', el('button', { type: 'button', class: 'link', text: f.det + ': ' + f.title,
      onclick: function () { openFinding(f); } }), f.role === 'target' ? ' (this host was the target)' : ''));
  });
  body.appendChild(ul);
  card.appendChild(body);
}

function showView(v) {
  $('view-findings').hidden = v !== 'findings';
  $('view-hosts').hidden = v !== 'hosts';
  $('tab-findings').classList.toggle('active', v === 'findings');
  $('tab-hosts').classList.toggle('active', v === 'hosts');
  if (v === 'hosts' && !hostsBuilt) {
    hostsBuilt = true;
    $('hosts-note').textContent = DATA.meta.host_rule;
    renderHostsMore();
  }
}

function showHost(i) {
  showView('hosts');
  while (hostsRendered <= i && hostsRendered < H.length) renderHostsMore();
  const card = $('host-' + i);
  if (card && !card.querySelector('.body')) toggleHost(card, H[i]);
  if (card) card.scrollIntoView();
}

function openFinding(f) {
  setFilter({ det: '', host: '', q: f.id, sev: SEV });
  const tr = document.querySelector('tr.row[data-i="' + f._i + '"]');
  if (tr) { toggle(tr, f); tr.scrollIntoView(); }
}

// -- start ----------------------------------------------------------------------------------------

function observe(sentinel, more, done) {
  if (!('IntersectionObserver' in window)) return;
  new IntersectionObserver(function (entries) {
    if (entries.some(function (e) { return e.isIntersecting; }) && !done()) more();
  }, { rootMargin: '800px' }).observe(sentinel);
}

function hashParams() {
  const out = {};
  location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
    if (!kv) return;
    const i = kv.indexOf('=');
    out[decodeURIComponent(i < 0 ? kv : kv.slice(0, i))] = i < 0 ? '1' : decodeURIComponent(kv.slice(i + 1));
  });
  return out;
}

// `#bench`: time filters and an expansion and write the numbers into #perf (bench/bench_report.py).
function bench() {
  const out = { load_ms: +performance.now().toFixed(1), script_start_ms: +T_START.toFixed(1),
    json_parse_ms: +(T_PARSED - T_START).toFixed(1), findings: F.length };
  let t = performance.now();
  setFilter({ det: F.length ? F[F.length - 1].det : '' });
  out.filter_detection_ms = +(performance.now() - t).toFixed(1);
  t = performance.now();
  setFilter({ det: '', q: '10.' });
  out.filter_text_ms = +(performance.now() - t).toFixed(1);
  t = performance.now();
  setFilter({ q: '', sev: ['high', 'critical'] });
  out.filter_severity_ms = +(performance.now() - t).toFixed(1);
  t = performance.now();
  state.sort = 'score'; state.asc = false; apply();
  out.sort_score_ms = +(performance.now() - t).toFixed(1);
  t = performance.now();
  const first = document.querySelector('tr.row');
  if (first) toggle(first, F[+first.dataset.i]);
  out.expand_ms = +(performance.now() - t).toFixed(1);
  t = performance.now();
  showView('hosts');
  out.hosts_view_ms = +(performance.now() - t).toFixed(1);
  showView('findings');
  $('perf').textContent = JSON.stringify(out);
}

function start() {
  buildSummary();
  buildFilters();
  $('tab-findings').addEventListener('click', function () { showView('findings'); });
  $('tab-hosts').addEventListener('click', function () { showView('hosts'); });
  const hp = hashParams();
  if (hp.det || hp.q || hp.host) setFilter({ det: hp.det || '', q: hp.q || '', host: hp.host || '' });
  else apply();
  observe($('more'), renderMore, function () { return rendered >= filtered.length; });
  observe($('hosts-more'), renderHostsMore, function () { return hostsRendered >= H.length; });
  if (hp.expand === 'all') {
    while (rendered < filtered.length) renderMore();
    document.querySelectorAll('tr.row').forEach(function (tr) { toggle(tr, F[+tr.dataset.i]); });
  } else if (hp.open) {
    const f = F.find(function (x) { return x.id === hp.open; });
    if (f) openFinding(f);
  }
  if (hp.view === 'hosts') {
    showView('hosts');
    if (hp.expand === 'all') {
      while (hostsRendered < H.length) renderHostsMore();
      H.forEach(function (h) { toggleHost($('host-' + h.i), h); });
    }
  }
  document.body.dataset.ready = '1';
  document.body.dataset.loadMs = performance.now().toFixed(1);
  if (hp.bench) bench();
}

start();
