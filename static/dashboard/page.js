// Small page behaviours, kept out of the HTML: the Content-Security-Policy allows no inline
// script, no inline event handler and no eval (so no hx-on and no htmx trigger filters).
//
//   <select data-submit-on-change>         submits its form when changed.
//   <nav data-tabs> <a role="tab" hx-get>  marks the tab whose content htmx loaded as selected.
//   data-poll-seconds-offline="2" data-poll-seconds-live="15"
//       sends the element an htmx "poll" event every so often: the first period while the live
//       socket is down (or the page has none), the second while it is open.
//   html.htmx-busy                          while any htmx request is out (dashboard.css draws a
//       thin bar along the window's top edge after 150 ms, so a quick poll does not flicker).
//   table.grid td cut with an ellipsis      gets its whole text as its title (shown on hover).
//
// Requests that the page makes by itself (polls, triggers from the socket, `load`) carry
// X-Dashboard-Background: they do not count as the user's activity for the session's idle expiry.
(function () {
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("[data-submit-on-change]") && el.form) el.form.requestSubmit();
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var tab = event.detail.elt;
    if (!tab.matches || !tab.matches("[data-tabs] [role=tab]")) return;
    tab.closest("[data-tabs]").querySelectorAll("[role=tab]").forEach(function (t) {
      t.setAttribute("aria-selected", t === tab ? "true" : "false");
    });
  });

  document.addEventListener("htmx:configRequest", function (event) {
    var cause = event.detail.triggeringEvent;
    if (!cause || !cause.isTrusted) event.detail.headers["X-Dashboard-Background"] = "1";
  });

  function schedulePoll(el) {
    var live = window.live && window.live.isOpen();
    var seconds = parseFloat(live ? el.dataset.pollSecondsLive : el.dataset.pollSecondsOffline);
    setTimeout(function () {
      if (!document.body.contains(el)) return;
      if (window.htmx) window.htmx.trigger(el, "poll");
      schedulePoll(el);
    }, seconds * 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll-seconds-offline]").forEach(schedulePoll);
  });

  // Waiting: every htmx request, whatever ends it (answer, network error, timeout, abort).
  var outstanding = new Set();
  function settle(event) {
    outstanding.delete(event.detail.xhr);
    document.documentElement.classList.toggle("htmx-busy", outstanding.size > 0);
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    outstanding.add(event.detail.xhr);
    document.documentElement.classList.add("htmx-busy");
  });
  ["htmx:afterRequest", "htmx:sendError", "htmx:timeout", "htmx:xhr:abort"].forEach(function (name) {
    document.addEventListener(name, settle);
  });

  // A cell cut short by its column's width says its whole value on hover.
  function titleCutCells(root) {
    root.querySelectorAll("table.grid td:not(.num)").forEach(titleIfCut);
  }
  function titleIfCut(td) {
    if (td.title && !td.dataset.autoTitle) return; // a title the server gave wins
    if (td.scrollWidth > td.clientWidth) {
      td.title = td.textContent.trim();
      td.dataset.autoTitle = "1";
    } else if (td.dataset.autoTitle) {
      td.removeAttribute("title");
      delete td.dataset.autoTitle;
    }
  }
  document.addEventListener("mouseover", function (event) {
    var td = event.target.closest && event.target.closest("table.grid td:not(.num)");
    if (td) titleIfCut(td);
  });
  document.addEventListener("htmx:afterSettle", function (event) { titleCutCells(event.target); });

  document.addEventListener("DOMContentLoaded", function () {
    var bar = document.createElement("div");
    bar.className = "busy-bar";
    bar.id = "busy-bar";
    bar.setAttribute("aria-hidden", "true");
    document.body.prepend(bar);
    titleCutCells(document);
  });
})();
