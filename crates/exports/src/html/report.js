"use strict";
(function () {
  var root = document.documentElement;
  var table = document.getElementById("findings");
  var form = document.getElementById("controls");
  if (!table || !form) { root.setAttribute("data-ready", "1"); return; }
  // Rows are laid out a page at a time (rows after the first page are written with class "later", hidden by the
  // style until this script runs): thousands of laid-out rows would make every sort and filter slow.
  var PAGE = Number(table.getAttribute("data-page")) || 250;
  var limit = PAGE;
  var body = table.tBodies[0];
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var col = {};
  heads.forEach(function (th, i) { col[th.getAttribute("data-col")] = i; });
  // Each row with its search text, in the current sort order.
  var items = Array.prototype.map.call(body.rows, function (r) { return { r: r, t: r.textContent.toLowerCase() }; });
  var cell = function (r, name) { return r.cells[col[name]].textContent; };
  var selects = Array.prototype.slice.call(form.querySelectorAll("select[data-filter]"));
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");
  var pager = document.getElementById("pager");
  var paged = document.getElementById("paged");

  function apply() {
    var want = {};
    selects.forEach(function (s) { want[s.getAttribute("data-filter")] = s.value; });
    var q = search.value.trim().toLowerCase();
    var n = 0;
    items.forEach(function (it) {
      var r = it.r;
      var ou = cell(r, "ou");
      var ok = (!want.verdict || cell(r, "verdict") === want.verdict) &&
        (!want.rule || cell(r, "rule") === want.rule) &&
        (!want.action || cell(r, "action") === want.action) &&
        (!want.ou || ou === want.ou || ou.indexOf(want.ou + "/") === 0) &&
        (!q || it.t.indexOf(q) !== -1);
      if (ok) { n += 1; }
      var hide = !ok || n > limit;
      if (r.hidden !== hide) { r.hidden = hide; }
    });
    shown.textContent = String(n);
    pager.hidden = n <= limit;
    paged.textContent = "The first " + limit + " are shown.";
  }
  function refilter() { limit = PAGE; apply(); }

  function sortBy(th) {
    var i = heads.indexOf(th);
    var numeric = th.getAttribute("data-type") === "num";
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var keyed = items.map(function (it, n) {
      var c = it.r.cells[i];
      var k = numeric ? Number(c.getAttribute("data-s") || c.textContent) : c.textContent.toLowerCase();
      return [k, n, it];
    });
    keyed.sort(function (a, b) {
      if (a[0] < b[0]) { return -dir; }
      if (a[0] > b[0]) { return dir; }
      return a[1] - b[1];
    });
    items = keyed.map(function (k) { return k[2]; });
    apply();
    // Emptied first, then refilled in one go: moving rows one by one within the table takes seconds at 5,000 rows.
    body.textContent = "";
    var frag = document.createDocumentFragment();
    items.forEach(function (it) { frag.appendChild(it.r); });
    body.appendChild(frag);
  }

  heads.forEach(function (th) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = th.textContent;
    th.textContent = "";
    th.appendChild(b);
    b.addEventListener("click", function () { sortBy(th); });
  });
  selects.forEach(function (s) { s.addEventListener("change", refilter); });
  search.addEventListener("input", refilter);
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  form.addEventListener("reset", function () { setTimeout(refilter, 0); });
  document.getElementById("more").addEventListener("click", function () { limit += PAGE; apply(); });
  document.getElementById("all").addEventListener("click", function () { limit = Infinity; apply(); });
  Array.prototype.forEach.call(document.querySelectorAll("button.pick"), function (b) {
    b.addEventListener("click", function (e) {
      e.preventDefault();
      form.querySelector("select[data-filter=ou]").value = b.getAttribute("data-ou");
      refilter();
      table.scrollIntoView();
    });
  });
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) { d.open = true; });
  });
  apply();
  root.setAttribute("data-ready", "1");
}());
