// Small page behaviours, kept out of the HTML: the Content-Security-Policy allows no inline
// script, no inline event handler and no eval (so no hx-on and no htmx trigger filters).
//
//   <select data-submit-on-change>         submits its form when changed.
//   <nav data-tabs> <a role="tab" hx-get>  marks the tab whose content htmx loaded as selected.
//   data-poll-seconds-offline="2" data-poll-seconds-live="15"
//       sends the element an htmx "poll" event every so often: the first period while the live
//       socket is down (or the page has none), the second while it is open.
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
})();
