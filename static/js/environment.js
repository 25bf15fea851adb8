// Environment area: progressive enhancement only; every form works without it.
(function () {
  "use strict";
  // "Select all on this page" for the device list's checkboxes. The control is
  // hidden until this script runs, because it does nothing without it.
  function wire(root) {
    var boxes = root.querySelectorAll("[data-select-all]");
    boxes.forEach(function (master) {
      master.hidden = false;
      if (master.dataset.wired) return;
      master.dataset.wired = "1";
      var name = master.getAttribute("data-select-all");
      var form = master.form;
      master.addEventListener("change", function () {
        form.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (box) {
          box.checked = master.checked;
        });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  document.addEventListener("htmx:afterSettle", function (event) { wire(document); });
})();
