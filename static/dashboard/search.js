// The top bar's client search (templates/dashboard/search/_box.html), kept out of the HTML
// (the CSP allows no inline script): "/" focuses the box; ArrowDown/ArrowUp move through the
// results htmx put in the dropdown; Enter opens the chosen account card; Escape closes.
(function () {
  var HIT = "#client-search-results [data-search-hit]";

  function input() { return document.getElementById("client-search-input"); }
  function results() { return document.getElementById("client-search-results"); }
  function hits() { return Array.prototype.slice.call(document.querySelectorAll(HIT)); }
  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function choose(index) {
    var all = hits();
    all.forEach(function (a, i) {
      a.setAttribute("aria-selected", i === index ? "true" : "false");
      a.id = a.id || "client-search-hit-" + i;
      if (i === index) {
        input().setAttribute("aria-activedescendant", a.id);
        a.scrollIntoView({ block: "nearest" });
      }
    });
  }
  function chosen() {
    var all = hits();
    for (var i = 0; i < all.length; i++) {
      if (all[i].getAttribute("aria-selected") === "true") return i;
    }
    return -1;
  }

  document.addEventListener("keydown", function (event) {
    var box = input();
    if (!box) return;
    if (event.key === "/" && !typing(document.activeElement) && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      box.focus();
      box.select();
      return;
    }
    if (event.target !== box) return;
    var all = hits();
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!all.length) return;
      event.preventDefault();
      var step = event.key === "ArrowDown" ? 1 : -1;
      choose((chosen() + step + all.length) % all.length);
    } else if (event.key === "Enter" && chosen() >= 0) {
      event.preventDefault();
      window.location.assign(all[chosen()].href);
    } else if (event.key === "Escape") {
      results().innerHTML = "";
      box.removeAttribute("aria-activedescendant");
    }
  });

  document.addEventListener("click", function (event) {
    var form = document.getElementById("client-search");
    if (form && !form.contains(event.target) && results()) results().innerHTML = "";
  });
})();
