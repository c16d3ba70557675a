"""The server and ``live.js`` write every number the same: a table of values x kinds rendered
by ``{% number %}`` is formatted again by the real ``static/dashboard/live.js`` in Chromium,
from the cell's own ``data-kind`` / ``data-digits``, and every string (and every ``neg``
mark) must come out identical."""

from __future__ import annotations

import json
from pathlib import Path

from django.template import Context, Template

LIVE_JS = Path(__file__).resolve().parents[2] / "static" / "dashboard" / "live.js"
ORIGIN = "http://numbers.test"

VALUES = [
    0, 0.0, -0.0, 0.005, -0.005, 0.015, 0.125, -0.125, 1.005, 2.675, 1.0049999999999999,
    0.0049999, -0.004, 0.5, 1.5, 2.5, -2.5, 9.995, 999.995, 1234.5, -1234.5, 23026.61,
    25329.27, 1234567.891, -9876543.21, 1e15 + 0.25, 1e21, 6025, 1.238, 1.23845, 1.398,
    149.9995, 0.00001, 0.000000015, 123.4, 1.1, 0.1 + 0.2, 10 ** 12, -(10 ** 9) - 0.5,
    None, "", "NaN", "1234.5",
]
KINDS = [  # (kind, digits, currency)
    ("money", None, "USD"), ("money", None, "JPY"), ("money", None, "KWD"), ("money", None, ""),
    ("lots", None, ""), ("percent", None, ""),
    ("price", 0, ""), ("price", 1, ""), ("price", 2, ""), ("price", 3, ""), ("price", 5, ""),
    ("price", None, ""), ("stop", 5, ""), ("stop", None, ""),
]

TEMPLATE = Template(
    "{% load numbers %}<!doctype html><meta charset=utf-8><table><tbody>"
    "{% for value, json, kind, digits, currency in cases %}<tr data-value='{{ json }}'>"
    '{% number "td" value kind digits currency=currency %}</tr>{% endfor %}</tbody></table>'
    "<script src=/live.js></script>")

COMPARE = """() => [...document.querySelectorAll("tr")].map((row) => {
  const cell = row.cells[0];
  const text = formatNumber(JSON.parse(row.dataset.value), cell.dataset.kind, cell.dataset.digits);
  return [cell.textContent, text, cell.classList.contains("neg"), text.startsWith("-")];
})"""


def test_server_and_live_js_write_every_number_identically(browser):
    cases = [(v, json.dumps(v), kind, digits, currency)
             for kind, digits, currency in KINDS for v in VALUES]
    html = TEMPLATE.render(Context({"cases": cases}))
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.route(f"{ORIGIN}/", lambda route: route.fulfill(body=html, content_type="text/html"))
    page.route(f"{ORIGIN}/live.js", lambda route: route.fulfill(
        body=LIVE_JS.read_text(), content_type="text/javascript"))
    page.goto(f"{ORIGIN}/")
    results = page.evaluate(COMPARE)
    assert not errors
    assert len(results) == len(cases)
    mismatches = [(value, kind, digits, currency, server, browser_text)
                  for (value, _, kind, digits, currency), (server, browser_text, neg, minus)
                  in zip(cases, results, strict=True)
                  if server != browser_text or neg != minus]
    assert not mismatches, "\n".join(map(repr, mismatches))
    # and the table is not trivially blank: the figures read as they should
    texts = {(v, k, d, c): r[0] for (v, _, k, d, c), r in zip(cases, results, strict=True)}
    assert texts[(25329.27, "money", None, "USD")] == "25,329.27"
    assert texts[(123.4, "percent", None, "")] == "123.40 %"
    assert texts[(1.238, "price", 5, "")] == "1.23800"
    assert texts[(6025, "price", 1, "")] == "6025.0"
    assert texts[(0, "stop", 5, "")] == "—"
    assert texts[(1234.5, "money", None, "JPY")] == "1,235"
