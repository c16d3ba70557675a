// Draws every [data-chart] element from the JSON script it names, on load and after htmx swaps.
// Plotly is loaded only by pages that have charts (its JS comes from the plotly wheel).
// Charts take their colours from the page's palette (dashboard.css variables), so they follow
// the light / dark theme, and are re-coloured when the theme or the system's scheme changes.
(function () {
  function palette() {
    var style = getComputedStyle(document.documentElement);
    function v(name) { return style.getPropertyValue(name).trim(); }
    return {ink: v("--ink"), muted: v("--muted"), line: v("--line")};
  }

  // Only colours: the figure's own sizes, margins and axis titles are kept.
  function themed(layout) {
    var colours = palette();
    var out = {
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: Object.assign({}, layout.font, {color: colours.ink}),
      legend: Object.assign({}, layout.legend, {
        font: Object.assign({}, (layout.legend || {}).font, {color: colours.ink}),
      }),
    };
    var axes = Object.keys(layout).filter(function (k) { return /^[xy]axis\d*$/.test(k); });
    ["xaxis", "yaxis"].forEach(function (k) { if (axes.indexOf(k) < 0) axes.push(k); });
    axes.forEach(function (k) {
      out[k] = Object.assign({}, layout[k], {
        gridcolor: colours.line, zerolinecolor: colours.muted, linecolor: colours.line,
        tickfont: Object.assign({}, (layout[k] || {}).tickfont, {color: colours.ink}),
      });
    });
    return out;
  }

  function draw(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var source = document.getElementById(el.dataset.chart);
      if (!source) return;
      var figure = JSON.parse(source.textContent);
      var layout = Object.assign({}, figure.layout || {}, themed(figure.layout || {}));
      window.Plotly.newPlot(el, figure.data, layout, {displaylogo: false, responsive: true});
      el.dataset.drawn = "1";
    });
  }

  function recolour() {
    if (!window.Plotly) return;
    document.querySelectorAll("[data-chart][data-drawn]").forEach(function (el) {
      window.Plotly.relayout(el, themed(el.layout || {}));
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  window.addEventListener("load", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.target); });
  // prefs.js fires it when the user picks a theme and when the system flips while on "auto"
  document.addEventListener("dashboard:theme", recolour);
})();
