/**
 * R5.1: the statistics page. Static HTML with inline script and inline SVG charts (no CDN, no
 * libraries): the user enters an API key and a date range; the page fetches /v1/statistics.
 * Amounts arrive in integer fen and are shown in yuan by integer arithmetic.
 */
export const STATS_PAGE_HTML = `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>绍兴职业培训券 · 统计 Statistics</title>
<style>
 body { font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 24px; color: #1f2933; }
 h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
 form { display: flex; gap: 12px; align-items: end; flex-wrap: wrap; }
 label { display: flex; flex-direction: column; font-size: 12px; gap: 4px; }
 input { padding: 6px; font-size: 14px; } button { padding: 7px 16px; font-size: 14px; }
 table { border-collapse: collapse; margin-top: 8px; font-size: 13px; }
 td, th { border: 1px solid #cbd2d9; padding: 4px 10px; text-align: right; } th { background: #f0f4f8; }
 td:first-child, th:first-child { text-align: left; }
 #status { font-size: 13px; color: #616e7c; } .error { color: #b42318 !important; }
 .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
 svg text { font-size: 11px; fill: #1f2933; }
</style></head>
<body>
<h1>职业培训券统计 · Training voucher statistics (R5.1)</h1>
<form id="f">
 <label>API key <input id="key" type="password" size="40" autocomplete="off" required></label>
 <label>From <input id="from" type="date" required></label>
 <label>To <input id="to" type="date" required></label>
 <button id="load" type="submit">Load</button>
</form>
<p id="status">Enter an API key (HR, finance or operator) and a date range.</p>
<div id="out" hidden>
 <h2>Trainees and certificates by settling district</h2>
 <table id="trainees"><thead><tr><th>District</th><th>Trainees</th><th>Certificates</th></tr></thead><tbody></tbody></table>
 <div class="grid">
  <section><h2>Subsidies by district (yuan)</h2><div id="chart-district"></div></section>
  <section><h2>Subsidies by month (yuan)</h2><div id="chart-month"></div></section>
  <section><h2>Subsidies by funding source (yuan)</h2><div id="chart-source"></div></section>
  <section><h2>Subsidies by voucher type (yuan)</h2><div id="chart-type"></div></section>
  <section><h2>Subsidies by occupation (yuan)</h2><div id="chart-occupation"></div></section>
  <section><h2>Priority groups (vouchers)</h2><div id="chart-groups"></div></section>
 </div>
 <h2>Budgets: used vs left (yuan)</h2><div id="chart-budgets"></div>
</div>
<script>
(function () {
  var DISTRICTS = { '330602': '越城区', '330603': '柯桥区', '330604': '上虞区', '330681': '诸暨市', '330683': '嵊州市', '330624': '新昌县' };
  var today = new Date();
  var iso = function (d) { return d.toISOString().slice(0, 10); };
  document.getElementById('to').value = iso(today);
  document.getElementById('from').value = iso(new Date(today.getTime() - 365 * 86400000));
  function yuan(fen) {
    var b = BigInt(fen), neg = b < 0n, a = neg ? -b : b;
    return (neg ? '-' : '') + (a / 100n).toString() + '.' + (a % 100n).toString().padStart(2, '0');
  }
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; }); }
  function sumBy(items, key) {
    var m = new Map();
    items.forEach(function (s) { var k = key(s); m.set(k, (m.get(k) || 0) + s.amountFen); });
    return Array.from(m.entries()).sort(function (a, b) { return a[0] < b[0] ? -1 : 1; });
  }
  /** Horizontal bar chart, inline SVG. entries: [label, value]; fmt: value → text. */
  function bars(id, entries, fmt) {
    var el = document.getElementById(id);
    if (entries.length === 0) { el.innerHTML = '<p>No data</p>'; return; }
    var max = Math.max.apply(null, entries.map(function (e) { return e[1]; })) || 1;
    var rowH = 24, w = 440, labelW = 170, barW = w - labelW - 80;
    var svg = '<svg xmlns="http://www.w3.org/2000/svg" role="img" width="' + w + '" height="' + (entries.length * rowH + 8) + '" data-chart="' + id + '">';
    entries.forEach(function (e, i) {
      var y = i * rowH + 4, len = Math.max(1, Math.round(barW * e[1] / max));
      svg += '<text x="0" y="' + (y + 15) + '">' + esc(e[0]) + '</text>';
      svg += '<rect class="bar" x="' + labelW + '" y="' + y + '" width="' + len + '" height="' + (rowH - 6) + '" fill="#3e7bfa"><title>' + esc(e[0] + ': ' + fmt(e[1])) + '</title></rect>';
      svg += '<text x="' + (labelW + len + 6) + '" y="' + (y + 15) + '">' + esc(fmt(e[1])) + '</text>';
    });
    el.innerHTML = svg + '</svg>';
  }
  function budgets(id, items) {
    var el = document.getElementById(id);
    if (items.length === 0) { el.innerHTML = '<p>No budgets</p>'; return; }
    var max = Math.max.apply(null, items.map(function (b) { return b.totalFen; })) || 1;
    var rowH = 26, w = 860, labelW = 330, barW = w - labelW - 200;
    var svg = '<svg xmlns="http://www.w3.org/2000/svg" role="img" width="' + w + '" height="' + (items.length * rowH + 30) + '" data-chart="' + id + '">';
    items.forEach(function (b, i) {
      var y = i * rowH + 4, used = Math.round(barW * b.usedFen / max), left = Math.round(barW * b.leftFen / max);
      svg += '<text x="0" y="' + (y + 15) + '">' + esc((DISTRICTS[b.district] || b.district) + ' · ' + b.fundingSource + ' · ' + b.year) + '</text>';
      svg += '<rect class="used" x="' + labelW + '" y="' + y + '" width="' + used + '" height="' + (rowH - 8) + '" fill="#d64545"><title>used ' + yuan(b.usedFen) + '</title></rect>';
      svg += '<rect class="left" x="' + (labelW + used) + '" y="' + y + '" width="' + left + '" height="' + (rowH - 8) + '" fill="#57ae5b"><title>left ' + yuan(b.leftFen) + '</title></rect>';
      svg += '<text x="' + (labelW + used + left + 6) + '" y="' + (y + 15) + '">' + yuan(b.usedFen) + ' / ' + yuan(b.totalFen) + '</text>';
    });
    var ly = items.length * rowH + 18;
    svg += '<rect x="0" y="' + (ly - 9) + '" width="10" height="10" fill="#d64545"/><text x="14" y="' + ly + '">used</text>';
    svg += '<rect x="60" y="' + (ly - 9) + '" width="10" height="10" fill="#57ae5b"/><text x="74" y="' + ly + '">left</text>';
    el.innerHTML = svg + '</svg>';
  }
  function render(s) {
    var tb = document.querySelector('#trainees tbody');
    tb.innerHTML = s.trainees.map(function (t) {
      return '<tr><td>' + esc((DISTRICTS[t.district] || '') + ' ' + t.district) + '</td><td>' + t.trainees + '</td><td>' + t.certificates + '</td></tr>';
    }).join('') || '<tr><td colspan="3">No settlements</td></tr>';
    bars('chart-district', sumBy(s.subsidies, function (x) { return (DISTRICTS[x.district] || '') + ' ' + x.district; }), yuan);
    bars('chart-month', sumBy(s.subsidies, function (x) { return x.month; }), yuan);
    bars('chart-source', sumBy(s.subsidies, function (x) { return x.fundingSource; }), yuan);
    bars('chart-type', sumBy(s.subsidies, function (x) { return x.voucherType; }), yuan);
    bars('chart-occupation', sumBy(s.subsidies, function (x) { return x.occupationCode || '-'; }).slice(0, 15), yuan);
    bars('chart-groups', s.priorityGroups.map(function (g) { return [g.group, g.count]; }), String);
    budgets('chart-budgets', s.budgets);
    document.getElementById('out').hidden = false;
  }
  document.getElementById('f').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var st = document.getElementById('status');
    st.className = ''; st.textContent = 'Loading…';
    var q = new URLSearchParams({ from: document.getElementById('from').value, to: document.getElementById('to').value });
    fetch('/v1/statistics?' + q, { headers: { Authorization: 'Bearer ' + document.getElementById('key').value } })
      .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
      .then(function (r) {
        if (!r.ok) { st.className = 'error'; st.textContent = (r.body.code || 'ERROR') + ': ' + (r.body.detail || r.body.title || ''); return; }
        render(r.body);
        st.textContent = 'Loaded ' + r.body.from + ' – ' + r.body.to + (r.body.district ? ' (district ' + r.body.district + ')' : ' (city-wide)');
        document.body.setAttribute('data-loaded', 'true');
      })
      .catch(function (e) { st.className = 'error'; st.textContent = String(e); });
  });
})();
</script>
</body></html>
`;
