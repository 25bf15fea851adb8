// Get started guide: progressive enhancement only; every step works without it.
(function () {
  "use strict";
  // Show the seed's IMPORTANT warning as soon as "Respond directly to active
  // threats" is cleared, so the admin sees the consequence before choosing
  // Next (the server still asks for confirmation either way).
  function syncSkipHint(root) {
    var respond = root.querySelector("#level-respond");
    var hint = root.querySelector("[data-skip-hint]");
    if (!respond || !hint) return;
    hint.classList.toggle("hidden", respond.checked || respond.disabled);
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.id === "level-respond") {
      var guide = target.closest("#guide");
      if (guide) syncSkipHint(guide);
    }
  });
  // htmx replaces the whole #guide (outerHTML), so portal.js's focus helper,
  // which looks inside the old, detached element, can't find the new step.
  // Move focus to the new step's heading, or to a question the step asks
  // (the skip warning's button), so keyboard and screen-reader users land on it.
  document.addEventListener("htmx:afterSettle", function () {
    var guide = document.getElementById("guide");
    if (!guide || guide.contains(document.activeElement) && document.activeElement !== document.body) return;
    var el = guide.querySelector("[data-focus-first]") || guide.querySelector("[data-autofocus]");
    if (el) el.focus();
  });
  // A confirmation shown above the guide belongs to the step it was made on;
  // once htmx swaps in another step, it would be stale.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "guide") {
      var toasts = document.querySelector("main > .toasts");
      if (toasts) toasts.remove();
    }
  });
})();
