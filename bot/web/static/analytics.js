/* The analytics page (a file of its own: the CSP allows no inline script). The charts are SVG the
   server renders (GET /console/api/analytics?charts=true); text is only ever set with textContent. */
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var FIELDS = ["from", "to", "channel", "language", "bucket"];

  function pct(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }
  function secs(v) {
    if (v === null || v === undefined) return "—";
    if (v < 90) return v.toFixed(0) + " s";
    if (v < 5400) return (v / 60).toFixed(1) + " min";
    return (v / 3600).toFixed(1) + " h";
  }

  function query() {
    var p = new URLSearchParams();
    FIELDS.forEach(function (f) { var v = $(f).value; if (v) p.set(f, v); });
    return p;
  }

  function table(target, columns, rows) {
    var box = $(target); box.textContent = "";
    if (!rows.length) { box.appendChild(SB.el("p", "empty", "No data for these filters.")); return; }
    var t = SB.el("table", "data"), head = SB.el("tr");
    columns.forEach(function (c) { var th = SB.el("th", c.num ? "num" : null, c.label); th.scope = "col"; head.appendChild(th); });
    var thead = SB.el("thead"); thead.appendChild(head); t.appendChild(thead);
    var body = SB.el("tbody");
    rows.forEach(function (r) {
      var tr = SB.el("tr");
      columns.forEach(function (c) { tr.appendChild(SB.el("td", c.num ? "num" : null, String(c.get(r)))); });
      body.appendChild(tr);
    });
    t.appendChild(body); box.appendChild(t);
  }

  function chart(name, svg) {
    var box = $("chart-" + name); if (!box) return;
    box.textContent = "";
    var doc = new DOMParser().parseFromString(svg, "image/svg+xml");
    box.appendChild(document.importNode(doc.documentElement, true));
  }

  function kpis(r) {
    var items = [["Conversations", r.totals.conversations], ["Messages", r.totals.messages],
                 ["Resolved by the bot", pct(r.totals.resolution_rate)], ["Handed off", pct(r.totals.handoff_rate)],
                 ["Thumbs up", pct(r.satisfaction.thumbs_up_rate)], ["Answered \u201cyes\u201d", pct(r.satisfaction.answered_yes_rate)],
                 ["Median first response", secs(r.agents.median_first_response_s)]];
    var box = $("kpis"); box.textContent = "";
    items.forEach(function (it) {
      var d = SB.el("div", "kpi");
      d.appendChild(SB.el("div", "value", String(it[1])));
      d.appendChild(SB.el("div", "label", it[0]));
      box.appendChild(d);
    });
  }

  function options(select, values) {
    var keep = select.value;
    while (select.options.length > 1) select.remove(1);
    values.forEach(function (v) { var o = SB.el("option", null, v); o.value = v; select.appendChild(o); });
    select.value = keep;
  }

  function render(r) {
    $("error").textContent = "";
    $("from").value = r.filters.from; $("to").value = r.filters.to;
    options($("channel"), r.channels); options($("language"), r.languages);
    $("definition").textContent = "Definition: " + r.definition;
    kpis(r);
    Object.keys(r.charts).forEach(function (k) { chart(k, r.charts[k]); });
    var per = r.filters.bucket === "week" ? "Week of" : "Day";
    table("table-volume", [{label: per, get: function (s) { return s.bucket; }},
      {label: "Conversations", num: true, get: function (s) { return s.conversations; }},
      {label: "Messages", num: true, get: function (s) { return s.messages; }}], r.series);
    table("table-resolution", [{label: per, get: function (s) { return s.bucket; }},
      {label: "Resolved", num: true, get: function (s) { return s.resolved; }},
      {label: "Conversations", num: true, get: function (s) { return s.conversations; }},
      {label: "Rate", num: true, get: function (s) { return pct(s.resolution_rate); }}], r.series);
    table("table-handoff", [{label: "Reason", get: function (h) { return h.reason; }},
      {label: "Conversations", num: true, get: function (h) { return h.conversations; }},
      {label: "Share of all", num: true, get: function (h) { return pct(h.rate); }}], r.handoff_reasons);
    var s = r.satisfaction;
    table("table-satisfaction", [{label: "Signal", get: function (x) { return x[0]; }},
      {label: "Count", num: true, get: function (x) { return x[1]; }}],
      [["Thumbs up", s.up], ["Thumbs down", s.down], ["\u201cDid that answer your question?\u201d yes", s.yes],
       ["\u201cDid that answer your question?\u201d no", s.no]]);
    var ratings = $("ratings"); ratings.textContent = "";
    if (!r.ratings.count) ratings.appendChild(SB.el("p", "empty", "No ratings yet."));
    else table("ratings", [{label: "Score", get: function (x) { return x[0]; }},
      {label: "Ratings", num: true, get: function (x) { return x[1]; }}],
      [["average", r.ratings.average + " of 5 (" + r.ratings.count + " ratings)"]].concat(
        Object.keys(r.ratings.distribution).map(function (k) { return [k, r.ratings.distribution[k]]; })));
    table("table-agents", [{label: "Agent", get: function (a) { return a.agent; }},
      {label: "Conversations", num: true, get: function (a) { return a.conversations; }},
      {label: "Median first response", num: true, get: function (a) { return secs(a.median_first_response_s); }},
      {label: "Median handling", num: true, get: function (a) { return secs(a.median_handling_s); }}],
      r.agents.by_agent.concat(r.agents.conversations ? [{agent: "All agents", conversations: r.agents.conversations,
        median_first_response_s: r.agents.median_first_response_s, median_handling_s: r.agents.median_handling_s}] : []));
    table("table-intents", [{label: "Intent", get: function (i) { return i.intent; }},
      {label: "Messages", num: true, get: function (i) { return i.turns; }}], r.top_intents);
    table("table-unanswered", [{label: "Question", get: function (u) { return u.question; }},
      {label: "Also asked as", get: function (u) { return (u.similar || []).map(function (q) { return "\u201c" + q + "\u201d"; }).join(", "); }},
      {label: "Times", num: true, get: function (u) { return u.count; }}], r.unanswered);
    var faqCols = [{label: "Entry", get: function (e) { return e.entry; }},
      {label: "Uses", num: true, get: function (e) { return e.uses; }},
      {label: "Thumbs down", num: true, get: function (e) { return e.down; }},
      {label: "\u201cNo\u201d", num: true, get: function (e) { return e.no; }}];
    table("table-faq-used", faqCols, r.faq_most_used);
    table("table-faq-negative", faqCols, r.faq_most_negative);
    document.body.setAttribute("data-ready", "1");
  }

  function load() {
    document.body.removeAttribute("data-ready");
    var p = query();
    $("csv").href = "/console/api/analytics.csv?" + p.toString();
    p.set("charts", "true");
    return SB.get("/console/api/analytics?" + p.toString()).then(render, function (err) {
      $("error").textContent = (err && typeof err.detail === "string" && err.detail) || "Could not load the analytics.";
    });
  }

  SB.session().then(function (s) {
    if (!s.agent) { location.href = "/console/login"; return; }
    $("filters").addEventListener("submit", function (e) { e.preventDefault(); load(); });
    ["channel", "language", "bucket"].forEach(function (f) { $(f).addEventListener("change", load); });
    return load();
  });
})();
