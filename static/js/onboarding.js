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
