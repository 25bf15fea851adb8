// Permissions page: progressive enhancement only. Without this file every
// form still works: the server answers a risky change with the same warning
// and a confirm button, and "Remove" links to a confirmation page.
(function () {
  "use strict";

  function closest(el, selector) {
    return el && el.closest ? el.closest(selector) : null;
  }

  function show(box, visible) {
    if (!box) return;
    box.classList.toggle("hidden", !visible);
    if (visible) box.setAttribute("role", "alert"); else box.removeAttribute("role");
    var form = closest(box, "form");
    var save = form && form.querySelector("[data-save-row]");
    // The access levels' form has two warnings (fewer levels, all devices off) and one Save: it is hidden while
    // either asks for confirmation, whose button saves the whole form.
    var open = form && form.querySelector("[data-confirm-box]:not(.hidden)");
    if (save) save.classList.toggle("hidden", !!open);
  }

  // The custom end date only matters for "Custom end date".
  function syncDuration(fieldset) {
    var select = fieldset.querySelector("select");
    var custom = fieldset.querySelector("[data-custom-end]");
    if (select && custom) custom.classList.toggle("hidden", select.value !== "custom");
  }

  function levelsReduced(form) {
    var inv = form.querySelector("input[data-level='investigate']");
    var resp = form.querySelector("input[data-level='respond']");
    if (!inv || !resp) return false;
    var invWas = form.getAttribute("data-investigate-was") === "1";
    var respWas = form.getAttribute("data-respond-was") === "1";
    // Same rule as the service: losing Respond, or losing every level.
    return (respWas && !resp.checked) || ((invWas || respWas) && !inv.checked && !resp.checked);
  }

  // The duration applies only to levels being newly turned on, so it is shown
  // only then (without this file it is always shown and simply unused).
  function syncNewGrant(form) {
    var box = form.querySelector("[data-new-grant-only]");
    if (!box) return;
    var adding = ["investigate", "respond"].some(function (level) {
      var input = form.querySelector("input[data-level='" + level + "']");
      return input && input.checked && form.getAttribute("data-" + level + "-was") !== "1";
    });
    box.classList.toggle("hidden", !adding);
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    var levels = closest(target, "[data-levels-form]");
    if (levels && target.matches("input[data-level]")) {
      show(levels.querySelector("[data-confirm-box='levels']"), levelsReduced(levels));
      syncNewGrant(levels);
    }
    var devices = closest(target, "[data-all-devices-was]");
    if (devices && target.matches("input[data-all-devices]")) {
      var was = devices.getAttribute("data-all-devices-was") === "1";
      show(closest(devices, "form").querySelector("[data-confirm-box='all-devices']"), was && !target.checked);
      // The On/Off label follows the switch; "(not saved)" until the change is saved.
      var label = devices.querySelector("[data-testid='all-devices-state']");
      if (label) label.textContent = (target.checked ? "On" : "Off") + (target.checked === was ? "" : " (not saved)");
    }
    var duration = closest(target, "[data-duration]");
    if (duration) syncDuration(duration);
  });

  document.addEventListener("click", function (event) {
    var opener = closest(event.target, "[data-open-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-open-dialog"));
      if (dialog && typeof dialog.showModal === "function") {
        event.preventDefault();
        dialog.showModal();
      }
      return;
    }
    var closer = closest(event.target, "[data-close-dialog]");
    if (closer) {
      var d = closest(closer, "dialog");
      if (d) d.close();
      return;
    }
    var cancel = closest(event.target, "[data-cancel-confirm]");
    if (cancel) {
      var form = closest(cancel, "form");
      if (!form) return;
      event.preventDefault();
      // Put the switches back to the saved state and close the warnings: Cancel keeps nothing of the change.
      if (form.hasAttribute("data-levels-form")) {
        var inv = form.querySelector("input[data-level='investigate']");
        var resp = form.querySelector("input[data-level='respond']");
        if (inv) inv.checked = form.getAttribute("data-investigate-was") === "1";
        if (resp) resp.checked = form.getAttribute("data-respond-was") === "1";
        syncNewGrant(form);
        var devicesRow = form.querySelector("[data-all-devices-was]");
        var devicesBox = form.querySelector("input[data-all-devices]");
        if (devicesRow && devicesBox) {
          devicesBox.checked = devicesRow.getAttribute("data-all-devices-was") === "1";
          var state = devicesRow.querySelector("[data-testid='all-devices-state']");
          if (state) state.textContent = devicesBox.checked ? "On" : "Off";
        }
      }
      form.querySelectorAll("[data-confirm-box]").forEach(function (box) { show(box, false); });
    }
  });

  function init(root) {
    root.querySelectorAll("[data-duration]").forEach(syncDuration);
    root.querySelectorAll("[data-levels-form]").forEach(syncNewGrant);
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail && event.detail.target) init(document);
  });
})();
