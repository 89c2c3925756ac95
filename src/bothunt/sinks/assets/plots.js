// Panel renderers: inline SVG built with createElementNS; every label goes in through textContent.
const SVGNS = 'http://www.w3.org/2000/svg';
const PW = 620, PH = 190, M = { l: 48, r: 40, t: 24, b: 30 };

function s(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  if (attrs) for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]));
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function trunc(v, n) {
  const t = String(v);
  return t.length > n ? t.slice(0, n - 1) + '\u2026' : t;
}

function label(svg, x, y, text, attrs, max) {
  const t = s('text', Object.assign({ x: x, y: y }, attrs || {}), trunc(text, max || 60));
  if (String(text).length > (max || 60)) t.appendChild(s('title', null, text));
  svg.appendChild(t);
  return t;
}

function fmtTime(t) {
  const d = new Date(t * 1000);
  return isNaN(d.getTime()) ? '' : d.toISOString().slice(0, 16).replace('T', ' ');
}

function fmtNum(v) {
  if (typeof v !== 'number' || !isFinite(v)) return '';
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(0) + 'k';
  if (a >= 100) return v.toFixed(0);
  if (a >= 1 || a === 0) return String(+v.toFixed(2));
  return String(+v.toPrecision(2));
}

function maxOf(values) {
  let m = 0;
  for (const v of values) if (typeof v === 'number' && isFinite(v) && v > m) m = v;
  return m;
}

function frame(p, w, h) {
  const svg = s('svg', { width: w, height: h, viewBox: '0 0 ' + w + ' ' + h, class: 'panel', 'data-type': p.type,
    role: 'img' });
  svg.setAttribute('aria-label', String(p.title || ''));
  label(svg, 8, 15, p.title || '', null, 95);
  return svg;
}

function box(svg, w, h) {
  const x0 = M.l, x1 = w - M.r, y0 = M.t, y1 = h - M.b;
  svg.appendChild(s('line', { x1: x0, y1: y1, x2: x1, y2: y1, class: 'axis' }));
  svg.appendChild(s('line', { x1: x0, y1: y0, x2: x0, y2: y1, class: 'axis' }));
  return { x0: x0, x1: x1, y0: y0, y1: y1, w: x1 - x0, h: y1 - y0 };
}

function timeTicks(svg, b, t0, t1) {
  for (let i = 0; i <= 2; i++) {
    const t = t0 + (t1 - t0) * i / 2;
    label(svg, b.x0 + b.w * i / 2, b.y1 + 14, fmtTime(t), { 'text-anchor': ['start', 'middle', 'end'][i],
      class: 'small' });
  }
}

function yTicks(svg, b, max, right) {
  label(svg, right ? b.x1 + 4 : b.x0 - 4, b.y0 + 4, fmtNum(max), { 'text-anchor': right ? 'start' : 'end',
    class: 'small' });
  label(svg, right ? b.x1 + 4 : b.x0 - 4, b.y1, '0', { 'text-anchor': right ? 'start' : 'end', class: 'small' });
}

function pDensity(p) {
  const svg = frame(p, PW, PH), b = box(svg, PW, PH);
  const n = p.counts.length, max = Math.max(1, maxOf(p.counts)), bw = b.w / Math.max(n, 1);
  p.counts.forEach(function (c, i) {
    if (!c) return;
    const h = b.h * c / max;
    svg.appendChild(s('rect', { x: b.x0 + i * bw, y: b.y1 - h, width: Math.max(bw - 0.5, 0.8), height: h, class: 'bar' }));
  });
  yTicks(svg, b, max);
  timeTicks(svg, b, p.t0, p.t1);
  return svg;
}

function scaler(lo, hi, a, len, log) {
  if (log) {
    const l0 = Math.log(Math.max(lo, 1e-9)), l1 = Math.log(Math.max(hi, lo * 1.0001, 1e-9));
    return function (x) { return a + len * (Math.log(Math.max(x, 1e-9)) - l0) / (l1 - l0 || 1); };
  }
  return function (x) { return a + len * (x - lo) / ((hi - lo) || 1); };
}

function pHist(p) {
  const svg = frame(p, PW, PH), b = box(svg, PW, PH);
  const n = p.counts.length, max = Math.max(1, maxOf(p.counts)), e = [];
  for (let i = 0; i <= n; i++) e.push(p.log ? p.lo * Math.pow(p.hi / p.lo, i / n) : p.lo + (p.hi - p.lo) * i / n);
  const sx = scaler(p.lo, p.hi, b.x0, b.w, p.log);
  if (p.band) {
    const x0 = Math.max(sx(p.band.lo), b.x0), x1 = Math.min(sx(p.band.hi), b.x1);
    svg.appendChild(s('rect', { x: x0, y: b.y0, width: Math.max(x1 - x0, 1), height: b.h, class: 'band' }));
  }
  for (let i = 0; i < n; i++) {
    const c = p.counts[i];
    if (!c) continue;
    const x0 = sx(e[i]), x1 = sx(e[i + 1]), h = b.h * c / max;
    svg.appendChild(s('rect', { x: x0, y: b.y1 - h, width: Math.max(x1 - x0 - 0.5, 0.8), height: h, class: 'bar' }));
  }
  const keys = [];
  (p.marks || []).forEach(function (m) {
    const x = sx(m.x);
    svg.appendChild(s('line', { x1: x, y1: b.y0, x2: x, y2: b.y1, class: 'mark' }));
    keys.push(m.label);
  });
  if (p.band) keys.push('band: ' + p.band.label);
  if (keys.length) label(svg, PW - 8, 15, keys.join(' \u00b7 '), { 'text-anchor': 'end', class: 'small' });
  yTicks(svg, b, max);
  label(svg, b.x0, b.y1 + 14, fmtNum(e[0]), { class: 'small' });
  label(svg, b.x1, b.y1 + 14, fmtNum(e[e.length - 1]), { 'text-anchor': 'end', class: 'small' });
  label(svg, b.x0 + b.w / 2, b.y1 + 14, p.x_label || '', { 'text-anchor': 'middle', class: 'small' });
  return svg;
}

function pTimebars(p) {
  const svg = frame(p, PW, PH), b = box(svg, PW, PH), items = p.items, width = p.width_s || 60;
  let t0 = Infinity, t1 = -Infinity;
  items.forEach(function (it) {
    t0 = Math.min(t0, it.t);
    t1 = Math.max(t1, it.t_end !== undefined && it.t_end > it.t ? it.t_end : it.t + width);
  });
  if (!(t1 > t0)) t1 = t0 + width;
  const refs = p.refs || [];
  const max = Math.max(1, maxOf(items.map(function (i) { return i.value; })), maxOf(refs.map(function (r) { return r.value; })));
  const sx = scaler(t0, t1, b.x0, b.w, false);
  items.forEach(function (it) {
    const end = it.t_end !== undefined && it.t_end > it.t ? it.t_end : it.t + width;
    const x0 = sx(it.t), w = Math.max(sx(end) - x0 - 0.5, 2.5), h = b.h * it.value / max;
    svg.appendChild(s('rect', { x: x0, y: b.y1 - h, width: w, height: h, class: 'bar' }));
  });
  const v2 = items.filter(function (i) { return typeof i.value2 === 'number'; });
  if (v2.length) {
    const max2 = Math.max(1, maxOf(v2.map(function (i) { return i.value2; })));
    const pts = v2.map(function (i) { return (sx(i.t) + 1).toFixed(1) + ',' + (b.y1 - b.h * i.value2 / max2).toFixed(1); });
    svg.appendChild(s('polyline', { points: pts.join(' '), class: 'line' }));
    yTicks(svg, b, max2, true);
  }
  refs.forEach(function (r) {
    const y = b.y1 - b.h * r.value / max;
    svg.appendChild(s('line', { x1: b.x0, y1: y, x2: b.x1, y2: y, class: 'ref' }));
    label(svg, b.x0 + 4, y - 3, r.label + ' ' + fmtNum(r.value), { class: 'small' });
  });
  yTicks(svg, b, max);
  timeTicks(svg, b, t0, t1);
  return svg;
}

function pHbars(p) {
  const items = p.items, rowH = 18, w = PW + 120, h = M.t + 10 + rowH * Math.max(items.length, 1);
  const svg = frame(p, w, h), lx = 250, x0 = lx + 8, x1 = w - 150;
  const ref = p.ref && typeof p.ref.value === 'number' ? p.ref.value : null;
  const max = Math.max(maxOf(items.map(function (i) { return i.value; })), ref || 0, 1e-9);
  items.forEach(function (it, i) {
    const y = M.t + 6 + i * rowH, bw = (x1 - x0) * Math.max(it.value, 0) / max;
    label(svg, lx, y + 12, it.label, { 'text-anchor': 'end' }, 40);
    svg.appendChild(s('rect', { x: x0, y: y + 3, width: Math.max(bw, 1), height: rowH - 6, class: 'bar ' + (it.cls || '') }));
    label(svg, x0 + bw + 4, y + 12, fmtNum(it.value) + (it.note ? '  ' + it.note : ''), { class: 'small' }, 40);
  });
  if (ref !== null) {
    const x = x0 + (x1 - x0) * ref / max;
    svg.appendChild(s('line', { x1: x, y1: M.t, x2: x, y2: h - 4, class: 'ref' }));
    label(svg, x + 3, M.t + 4, p.ref.label + ' ' + fmtNum(ref), { class: 'small' });
  }
  return svg;
}

function pBipartite(p) {
  const rows = Math.max(p.left.length, p.right.length, 1), w = PW + 120, h = M.t + 16 + rows * 20;
  const svg = frame(p, w, h), xl = 200, xr = w - 200;
  const yl = function (i) { return M.t + 14 + i * (h - M.t - 20) / Math.max(p.left.length, 1); };
  const yr = function (j) { return M.t + 14 + j * (h - M.t - 20) / Math.max(p.right.length, 1); };
  const max = Math.max(1, maxOf(p.edges.map(function (e) { return e[2]; })));
  p.edges.forEach(function (e) {
    const y0 = yl(e[0]), y1 = yr(e[1]), mx = (xl + xr) / 2;
    svg.appendChild(s('path', { d: 'M' + xl + ',' + y0 + ' C' + mx + ',' + y0 + ' ' + mx + ',' + y1 + ' ' + xr + ',' + y1,
      class: 'edge', 'stroke-width': (1 + 7 * Math.sqrt(e[2] / max)).toFixed(1) }));
  });
  p.left.forEach(function (v, i) { label(svg, xl - 6, yl(i) + 4, v, { 'text-anchor': 'end' }, 30); });
  p.right.forEach(function (v, j) { label(svg, xr + 6, yr(j) + 4, v, null, 30); });
  return svg;
}

function pScatter(p) {
  const svg = frame(p, PW, PH), b = box(svg, PW, PH), x0 = p.x0 || 0;
  const pts = p.points.map(function (q) { return [x0 + q[0], q[1], q[2] ? 'hot' : '']; });
  let xlo = Infinity, xhi = -Infinity, ylo = Infinity, yhi = -Infinity;
  pts.forEach(function (q) { xlo = Math.min(xlo, q[0]); xhi = Math.max(xhi, q[0]); ylo = Math.min(ylo, q[1]); yhi = Math.max(yhi, q[1]); });
  if (p.diagonal) { xlo = ylo = Math.min(xlo, ylo); xhi = yhi = Math.max(xhi, yhi); }
  if (!p.log_y) ylo = Math.min(ylo, 0);
  const sx = scaler(xlo, xhi, b.x0, b.w, p.log_x), syr = scaler(ylo, yhi, 0, b.h, p.log_y);
  const sy = function (y) { return b.y1 - syr(y); };
  if (p.diagonal) svg.appendChild(s('line', { x1: sx(xlo), y1: sy(ylo), x2: sx(xhi), y2: sy(yhi), class: 'ref' }));
  pts.forEach(function (q) {
    svg.appendChild(s('circle', { cx: sx(q[0]).toFixed(1), cy: sy(q[1]).toFixed(1), r: 2.5, class: 'dot ' + (q[2] || '') }));
  });
  label(svg, b.x0 - 4, b.y0 + 4, fmtNum(yhi), { 'text-anchor': 'end', class: 'small' });
  label(svg, b.x0 - 4, b.y1, fmtNum(ylo), { 'text-anchor': 'end', class: 'small' });
  if (p.x_time) timeTicks(svg, b, xlo, xhi);
  else {
    label(svg, b.x0, b.y1 + 14, fmtNum(xlo), { class: 'small' });
    label(svg, b.x1, b.y1 + 14, fmtNum(xhi), { 'text-anchor': 'end', class: 'small' });
    label(svg, b.x0 + b.w / 2, b.y1 + 14, (p.x_label || '') + ' vs ' + (p.y_label || ''), { 'text-anchor': 'middle', class: 'small' });
  }
  return svg;
}

const PANELS = { density: pDensity, hist: pHist, timebars: pTimebars, hbars: pHbars, bipartite: pBipartite,
  scatter: pScatter };

function renderPlot(plot) {
  const div = document.createElement('div');
  div.className = 'plot';
  div.dataset.kind = plot.kind;
  plot.panels.forEach(function (p) {
    const draw = PANELS[p.type];
    if (draw) div.appendChild(draw(p));
  });
  return div;
}

// One time axis for all of a host's findings: a lane per finding from its first to its last event.
function hostTimeline(rows) {
  const spans = rows.map(function (f) {
    const a = Date.parse(f.first) / 1000, z = Date.parse(f.last) / 1000;
    return { f: f, a: isNaN(a) ? z : a, z: isNaN(z) ? a : z };
  }).filter(function (x) { return !isNaN(x.a); });
  const w = PW + 200, laneH = 16, h = M.t + 24 + laneH * Math.max(spans.length, 1);
  const svg = frame({ type: 'timeline', title: 'Timeline of this host\u2019s findings (UTC)' }, w, h);
  svg.classList.add('host-timeline');
  if (!spans.length) return svg;
  let t0 = Infinity, t1 = -Infinity;
  spans.forEach(function (x) { t0 = Math.min(t0, x.a); t1 = Math.max(t1, x.z); });
  if (!(t1 > t0)) t1 = t0 + 60;
  const b = { x0: 290, x1: w - 20, y0: M.t, y1: h - 22 };
  b.w = b.x1 - b.x0;
  const sx = scaler(t0, t1, b.x0, b.w, false);
  spans.forEach(function (x, i) {
    const y = M.t + 4 + i * laneH, det = ['beacon', 'inbound_flood', 'relay', 'dga', 'dns_c2'].indexOf(x.f.det) >= 0 ? x.f.det : 'other';
    svg.appendChild(s('rect', { x: sx(x.a), y: y + 2, width: Math.max(sx(x.z) - sx(x.a), 3), height: laneH - 5,
      class: 'lane det-' + det }));
    label(svg, b.x0 - 6, y + 11, x.f.det + ': ' + x.f.title, { 'text-anchor': 'end', class: 'small' }, 46);
  });
  svg.appendChild(s('line', { x1: b.x0, y1: b.y1, x2: b.x1, y2: b.y1, class: 'axis' }));
  timeTicks(svg, b, t0, t1);
  return svg;
}
