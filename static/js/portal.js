// Progressive enhancement only: every interaction also works without this file.
(function () {
  "use strict";
  // Forms marked data-confirm ask before submitting (plain-form fallback:
  // the server also asks, with a confirmation page, when "confirm" is missing).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var message = form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
  // After htmx swaps content in, move focus to the element marked autofocus
  // inside it, so keyboard and screen-reader users land on the new content.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    if (!target) return;
    var focusable = target.querySelector("[data-autofocus]");
    if (focusable) focusable.focus();
  });
})();
