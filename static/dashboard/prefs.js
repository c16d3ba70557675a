// Display preferences kept in this browser (localStorage): the theme (auto / light / dark) and
// the table density (comfortable / compact). Loaded without `defer` in <head>, so the choice is
// on <html> before the first paint (no white flash on a dark desk); the CSP forbids inline script.
//
// The theme uses the same key ("theme") and attribute (html[data-theme]) as Django's admin, so
// the admin follows the dashboard's choice and the other way round.
//
//   <select data-pref="theme">     auto / light / dark
//   <button data-pref="density">   toggles compact (aria-pressed)
//
// A change, the user's or the system's while on "auto", fires "dashboard:theme" on document
// (charts.js redraws its colours).
(function () {
  var root = document.documentElement;
  var THEMES = ["auto", "light", "dark"];

  function read(key, allowed, fallback) {
    try {
      var value = window.localStorage.getItem(key);
      return allowed.indexOf(value) >= 0 ? value : fallback;
    } catch (e) {
      return fallback; // storage blocked: the defaults, never an error
    }
  }
  function write(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* kept for this page only */ }
  }

  // What "auto" means right now: the palette the CSS applies is html[data-scheme], always
  // resolved here, so dashboard.css holds the dark palette once.
  var systemDark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function applyTheme(theme) {
    root.dataset.theme = theme;
    root.dataset.scheme = theme === "auto" ? (systemDark && systemDark.matches ? "dark" : "light")
      : theme;
    document.querySelectorAll("select[data-pref=theme]").forEach(function (s) { s.value = theme; });
    document.dispatchEvent(new CustomEvent("dashboard:theme", {detail: {theme: theme}}));
  }
  function applyDensity(density) {
    if (density === "compact") root.dataset.density = "compact";
    else delete root.dataset.density;
  }

  applyTheme(read("theme", THEMES, "auto"));
  applyDensity(read("density", ["comfortable", "compact"], "comfortable"));

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select[data-pref=theme]").forEach(function (select) {
      select.value = root.dataset.theme;
      select.addEventListener("change", function () {
        var theme = THEMES.indexOf(select.value) >= 0 ? select.value : "auto";
        write("theme", theme);
        applyTheme(theme);
      });
    });
    document.querySelectorAll("button[data-pref=density]").forEach(function (button) {
      button.setAttribute("aria-pressed", root.dataset.density === "compact" ? "true" : "false");
      button.addEventListener("click", function () {
        var compact = root.dataset.density !== "compact";
        write("density", compact ? "compact" : "comfortable");
        applyDensity(compact ? "compact" : "comfortable");
        button.setAttribute("aria-pressed", compact ? "true" : "false");
      });
    });
  });
  // The system switched between light and dark: "auto" follows it.
  if (systemDark && systemDark.addEventListener) {
    systemDark.addEventListener("change", function () { applyTheme(root.dataset.theme); });
  }
  // Another tab changed a preference: follow it.
  window.addEventListener("storage", function (event) {
    if (event.key === "theme") applyTheme(read("theme", THEMES, "auto"));
    if (event.key === "density") applyDensity(read("density", ["comfortable", "compact"], "comfortable"));
  });
})();
