// Progressive enhancement for Service status: without this file the filter
// form's "Apply" button does the same thing.
(function () {
  "use strict";
  // Changing a filter applies it at once (through htmx when it is loaded).
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!(select instanceof HTMLSelectElement) || !select.hasAttribute("data-autosubmit")) return;
    var form = select.form;
    if (!form) return;
    if (typeof form.requestSubmit === "function") form.requestSubmit();
    else form.submit();
  });
})();
