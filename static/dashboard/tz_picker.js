// The top bar's time-zone picker (templates/dashboard/partials/tz_picker.html): choosing a view
// saves it at once; "My time zone" starts from the browser's own zone, with the browser's list
// of zone names to pick another. Without JavaScript the "Set" button does the same.
(function () {
  function setUp() {
    var form = document.querySelector("[data-tz-picker]");
    if (!form) return;
    var view = form.elements.view;
    var zone = form.elements.zone;
    // back to this page afterwards (the server never writes the path into the page)
    form.elements.next.value = window.location.pathname + window.location.search;
    var names = document.getElementById("tz-zone-names");
    if (names && !names.options.length && Intl.supportedValuesOf) {
      Intl.supportedValuesOf("timeZone").forEach(function (name) {
        var option = document.createElement("option");
        option.value = name;
        names.appendChild(option);
      });
    }
    view.addEventListener("change", function () {
      zone.hidden = view.value !== "local";
      if (view.value === "local" && !zone.value) {
        zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
      }
      form.requestSubmit();
    });
    zone.addEventListener("change", function () { if (zone.value) form.requestSubmit(); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
