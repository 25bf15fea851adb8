// Progressive enhancement only: every interaction also works without this file.
(function () {
  "use strict";

  // Collapse / expand the left navigation in place; the form posts the same choice when script is off.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-nav-toggle")) return;
    event.preventDefault();
    var root = document.documentElement;
    var collapse = root.getAttribute("data-nav") !== "collapsed";
    var state = form.querySelector("input[name=nav]");
    var button = form.querySelector("button");
    if (collapse) root.setAttribute("data-nav", "collapsed"); else root.removeAttribute("data-nav");
    state.value = collapse ? "collapsed" : "expanded";
    var body = new FormData(form);
    body.set("nav", state.value);
    state.value = collapse ? "expanded" : "collapsed";  // the next press toggles back
    button.setAttribute("aria-expanded", collapse ? "false" : "true");
    button.title = (collapse ? "Expand" : "Collapse") + " navigation";
    fetch(form.action, { method: "POST", body: body, credentials: "same-origin", redirect: "manual" });
  });

  // Print buttons exist only with script (window.print); Ctrl+P prints the same page without it.
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });

  // A printout shows every disclosure's content.
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details:not([open])").forEach(function (d) { d.setAttribute("open", ""); d.setAttribute("data-print-opened", ""); });
  });
  window.addEventListener("afterprint", function () {
    document.querySelectorAll("details[data-print-opened]").forEach(function (d) { d.removeAttribute("open"); d.removeAttribute("data-print-opened"); });
  });

  // Narrow screens show tables as stacked rows; each cell is labelled with its column header.
  function labelCells(root) {
    root.querySelectorAll("table.data").forEach(function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      if (!heads.length) return;
      table.querySelectorAll("tbody tr").forEach(function (row) {
        Array.prototype.forEach.call(row.children, function (cell, i) {
          if (cell.tagName === "TD" && heads[i] && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", heads[i]);
        });
      });
    });
  }
  labelCells(document);

  // A table wider than its box scrolls inside it; keyboard users must be able to reach and scroll it.
  function reachableScrollers() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      var scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
      if (scrolls && !wrap.hasAttribute("tabindex")) {
        var caption = wrap.querySelector("caption");
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", caption ? caption.textContent.trim() : "Table");
        wrap.setAttribute("data-scroll-region", "");
      } else if (!scrolls && wrap.hasAttribute("data-scroll-region")) {
        ["tabindex", "role", "aria-label", "data-scroll-region"].forEach(function (a) { wrap.removeAttribute(a); });
      }
    });
  }
  reachableScrollers();
  window.addEventListener("resize", reachableScrollers);
  document.addEventListener("htmx:afterSettle", reachableScrollers);
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail && event.detail.target) labelCells(event.detail.target);
  });

  // After htmx swaps content in, move focus to the element marked autofocus
  // inside it, so keyboard and screen-reader users land on the new content.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    if (!target) return;
    var focusable = target.querySelector("[data-autofocus]");
    if (focusable) focusable.focus();
  });

  // A page's messages ("Refresh requested ...") answer the last action: the next one clears them, so
  // no message outlives what it was about. (Full page loads show only the messages of their own action.)
  document.addEventListener("htmx:beforeRequest", function () {
    document.querySelectorAll("main > .toasts").forEach(function (toasts) { toasts.remove(); });
  });
})();
