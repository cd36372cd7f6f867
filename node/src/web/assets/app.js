// Tessera operator's page: the only script. Everything works without it; it only
// refreshes search results while typing (forms marked data-live) and offers printing.
"use strict";
(function () {
  function live(form) {
    var target = document.getElementById(form.getAttribute("data-live"));
    if (!target) { return; }
    var timer = null;
    var ask = function () {
      var query = new URLSearchParams(new FormData(form)).toString();
      var url = form.getAttribute("action") + "?" + query;
      fetch(url + "&partial=1", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          target.innerHTML = html;
          history.replaceState(null, "", url);
        })
        .catch(function () { /* the button still works */ });
    };
    form.addEventListener("input", function (e) {
      if (e.target.type === "search" || e.target.tagName === "SELECT") {
        clearTimeout(timer);
        timer = setTimeout(ask, 250);
      }
    });
  }
  document.querySelectorAll("form[data-live]").forEach(live);
  document.querySelectorAll("button[data-print]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () { window.print(); });
  });
})();
