// Progressive enhancement for Service status: without this file the filter
// form's "Apply" button does the same thing, and linked rows open by a click.
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

  // A link to an action (#action-...), from the Complete now list, a regression or an email,
  // opens that row and puts the keyboard focus on it.
  function openLinkedRow() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    if (id.indexOf("action-") !== 0) return;
    var row = document.getElementById(id);
    var details = row && row.querySelector("details");
    if (!details) return;
    details.open = true;
    var summary = details.querySelector("summary");
    if (summary) summary.focus();
  }
  document.addEventListener("DOMContentLoaded", openLinkedRow);
  window.addEventListener("hashchange", openLinkedRow);
})();
