"use strict";
(function () {
  var root = document.documentElement;
  root.classList.add("js");
  var table = document.getElementById("findings");
  var form = document.getElementById("controls");
  if (!table || !form) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var col = {};
  heads.forEach(function (th, i) { col[th.getAttribute("data-col")] = i; });
  var text = rows.map(function (r) { return r.textContent.toLowerCase(); });
  var cell = function (r, name) { return r.cells[col[name]].textContent; };
  var selects = Array.prototype.slice.call(form.querySelectorAll("select[data-filter]"));
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");

  function apply() {
    var want = {};
    selects.forEach(function (s) { want[s.getAttribute("data-filter")] = s.value; });
    var q = search.value.trim().toLowerCase();
    var n = 0;
    rows.forEach(function (r, i) {
      var ou = cell(r, "ou");
      var ok = (!want.verdict || cell(r, "verdict") === want.verdict) &&
        (!want.rule || cell(r, "rule") === want.rule) &&
        (!want.action || cell(r, "action") === want.action) &&
        (!want.ou || ou === want.ou || ou.indexOf(want.ou + "/") === 0) &&
        (!q || text[i].indexOf(q) !== -1);
      r.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = String(n);
  }

  function sortBy(th) {
    var i = heads.indexOf(th);
    var numeric = th.getAttribute("data-type") === "num";
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var key = function (r) {
      var c = r.cells[i];
      return numeric ? Number(c.getAttribute("data-s") || c.textContent) : c.textContent.toLowerCase();
    };
    var keyed = rows.map(function (r, n) { return [key(r), n, r]; });
    keyed.sort(function (a, b) {
      if (a[0] < b[0]) { return -dir; }
      if (a[0] > b[0]) { return dir; }
      return a[1] - b[1];
    });
    var frag = document.createDocumentFragment();
    keyed.forEach(function (k) { frag.appendChild(k[2]); });
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
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  search.addEventListener("input", apply);
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  form.addEventListener("reset", function () { setTimeout(apply, 0); });
  Array.prototype.forEach.call(document.querySelectorAll("button.pick"), function (b) {
    b.addEventListener("click", function (e) {
      e.preventDefault();
      var ou = form.querySelector("select[data-filter=ou]");
      ou.value = b.getAttribute("data-ou");
      apply();
      table.scrollIntoView();
    });
  });
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) { d.open = true; });
  });
  root.setAttribute("data-ready", "1");
}());
