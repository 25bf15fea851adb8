// Notification contacts: turns the contact picker into an ARIA 1.2 combobox
// (input + listbox, aria-activedescendant), and keeps its messages current.
// Progressive enhancement only: without this file the picker is a GET form
// with an Add button per result, and removal has a confirmation page.
(function () {
  "use strict";

  function statusText(state, count) {
    if (state === "short") return "Type at least 2 characters to search.";
    if (state === "none") return "No people or teams match your search.";
    if (state === "results") {
      return count + (count === 1 ? " result" : " results") +
        " available. Use the up and down arrow keys to review them and Enter to choose.";
    }
    return "";
  }

  function Picker(root) {
    this.root = root;
    this.input = root.querySelector("[data-picker-input]");
    this.popup = root.querySelector("[data-picker-results]");
    this.entry = root.querySelector("[data-picker-entry]");
    this.qCopy = root.querySelector("[data-picker-q]");
    this.selected = root.querySelector("[data-picker-selected]");
    this.status = root.querySelector("[data-picker-status]");
    this.type = root.querySelector("[data-picker-type]");
    this.active = -1;
    if (!this.input || !this.popup) return;
    root.classList.add("is-enhanced");
    var input = this.input;
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    this.bind();
    this.refresh(false);
  }

  Picker.prototype.listbox = function () {
    return this.popup.querySelector("ul");
  };

  Picker.prototype.options = function () {
    var list = this.listbox();
    return list ? Array.prototype.slice.call(list.querySelectorAll("li[data-value]")) : [];
  };

  // Called after every swap of the results: apply the listbox roles and
  // announce the count in the live region.
  Picker.prototype.refresh = function (announce) {
    var list = this.listbox();
    var state = this.popup.querySelector("[data-picker-state]");
    var stateName = state ? state.getAttribute("data-picker-state") : "empty";
    var count = state ? parseInt(state.getAttribute("data-count") || "0", 10) : 0;
    if (list) {
      list.setAttribute("role", "listbox");
      this.input.setAttribute("aria-controls", list.id);
      this.options().forEach(function (li) {
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        if (li.hasAttribute("data-unavailable")) li.setAttribute("aria-disabled", "true");
      });
    }
    this.active = -1;
    this.input.removeAttribute("aria-activedescendant");
    // Results that arrive after the admin tabbed away are announced but stay
    // closed (focusing the field again opens them).
    this.setOpen(stateName !== "empty" && document.activeElement === this.input);
    if (announce && this.status) this.status.textContent = statusText(stateName, count);
  };

  Picker.prototype.setOpen = function (open) {
    var hasContent = this.popup.querySelector("[data-picker-state]") &&
      this.popup.querySelector("[data-picker-state]").getAttribute("data-picker-state") !== "empty";
    open = open && hasContent;
    this.popup.hidden = !open;
    if (!open) {
      // Never point assistive technology at an option in a hidden list.
      this.input.removeAttribute("aria-activedescendant");
      this.options().forEach(function (li) {
        li.classList.remove("is-active");
        li.setAttribute("aria-selected", "false");
      });
      this.active = -1;
    }
    this.input.setAttribute("aria-expanded", open && this.options().length ? "true" : "false");
  };

  Picker.prototype.isOpen = function () {
    return !this.popup.hidden;
  };

  Picker.prototype.highlight = function (index) {
    var options = this.options();
    if (!options.length) return;
    if (index < 0) index = options.length - 1;
    if (index >= options.length) index = 0;
    options.forEach(function (li, i) {
      li.classList.toggle("is-active", i === index);
      li.setAttribute("aria-selected", i === index ? "true" : "false");
    });
    this.active = index;
    var li = options[index];
    this.input.setAttribute("aria-activedescendant", li.id);
    if (li.scrollIntoView) li.scrollIntoView({ block: "nearest" });
  };

  Picker.prototype.choose = function (li) {
    var reason = li.getAttribute("data-unavailable");
    var name = li.getAttribute("data-name");
    if (reason) {
      if (this.status) this.status.textContent = name + " can't be added: " + reason.toLowerCase() + ".";
      return;
    }
    this.entry.value = li.getAttribute("data-value");
    this.input.value = name;
    if (this.qCopy) this.qCopy.value = name;
    if (this.selected) {
      this.selected.textContent = "Selected: " + name + " (" + li.getAttribute("data-kind") + ")";
      this.selected.hidden = false;
    }
    this.setOpen(false);
    if (this.status) {
      this.status.textContent = "Selected " + name + ". " +
        (this.type ? "Choose the notification type, then select Add." : "Select Add to add them.");
    }
  };

  Picker.prototype.clearChoice = function () {
    if (this.entry.value) {
      this.entry.value = "";
      if (this.selected) { this.selected.hidden = true; this.selected.textContent = ""; }
    }
  };

  Picker.prototype.bind = function () {
    var self = this;
    var input = this.input;
    input.addEventListener("keydown", function (event) {
      var options = self.options();
      switch (event.key) {
        case "ArrowDown":
          event.preventDefault();
          if (!self.isOpen()) self.setOpen(true);
          self.highlight(self.active + 1);
          break;
        case "ArrowUp":
          event.preventDefault();
          if (!self.isOpen()) self.setOpen(true);
          self.highlight(self.active - 1);
          break;
        case "Home":
        case "End":
          if (self.isOpen() && options.length) {
            event.preventDefault();
            self.highlight(event.key === "Home" ? 0 : options.length - 1);
          }
          break;
        case "Enter":
          // Enter chooses the highlighted result; otherwise it searches now
          // (instead of leaving the page for the plain search results).
          event.preventDefault();
          if (self.isOpen() && self.active >= 0 && options[self.active]) {
            self.choose(options[self.active]);
          } else if (window.htmx) {
            window.htmx.trigger(input, "search");
          }
          break;
        case "Escape":
          if (self.isOpen()) {
            event.preventDefault();
            self.setOpen(false);
          }
          break;
        default:
          break;
      }
    });
    input.addEventListener("input", function () {
      self.clearChoice();
      if (self.qCopy) self.qCopy.value = input.value;
    });
    input.addEventListener("focus", function () {
      if (!self.entry.value) self.setOpen(true);
    });
    // Mouse: choose on mousedown so the input keeps focus (and the list
    // doesn't close on blur first); a click elsewhere in the list also keeps it.
    this.popup.addEventListener("mousedown", function (event) {
      event.preventDefault();
      var li = event.target.closest("li[data-value]");
      if (li) self.choose(li);
    });
    // With JavaScript the Search button searches in place, like Enter: the
    // plain results page is for browsers without it.
    var searchButton = this.root.querySelector("[data-picker-search]");
    if (searchButton && window.htmx) {
      searchButton.addEventListener("click", function (event) {
        event.preventDefault();
        input.focus();
        window.htmx.trigger(input, "search");
      });
    }
    // Tabbing away closes the list: left open it would cover the fields
    // below it (the phone number and Add in the guide's narrower column).
    input.addEventListener("blur", function () { self.setOpen(false); });
    document.addEventListener("click", function (event) {
      if (!self.root.contains(event.target)) self.setOpen(false);
    });
    this.popup.addEventListener("htmx:afterSwap", function () { self.refresh(true); });
    if (this.type) {
      var helps = this.root.querySelectorAll("[data-type-help]");
      var syncType = function () {
        helps.forEach(function (p) { p.hidden = p.getAttribute("data-type-help") !== self.type.value; });
      };
      this.type.addEventListener("change", syncType);
      syncType();
    }
  };

  function init(scope) {
    (scope || document).querySelectorAll("[data-picker]").forEach(function (root) {
      if (!root.classList.contains("is-enhanced")) new Picker(root);
    });
  }

  // A refused Add (or phone number) comes back as a page with the error next
  // to its field: put the keyboard there, so the error (aria-describedby) is
  // read with the field.
  function focusFirstError() {
    var invalid = document.querySelector("[data-picker] [aria-invalid=true], .contact__phone-form [aria-invalid=true]");
    if (invalid && invalid.offsetParent !== null) invalid.focus();
  }

  // Messages answer the action that caused them. When a later action succeeds
  // in place (an htmx swap of the contacts board or of a guide step), the
  // earlier messages no longer describe the page: the top-of-page messages
  // and the Add form's errors go, so no stale "already a contact" stays.
  function clearStaleMessages() {
    document.querySelectorAll("main .toasts").forEach(function (el) { el.remove(); });
    document.querySelectorAll("[data-picker-error]").forEach(function (el) {
      var id = el.id;
      el.remove();
      if (!id) return;
      document.querySelectorAll("[aria-describedby~='" + id + "']").forEach(function (field) {
        var rest = field.getAttribute("aria-describedby").split(/\s+/).filter(function (x) { return x && x !== id; });
        field.setAttribute("aria-describedby", rest.join(" "));
        field.removeAttribute("aria-invalid");
      });
    });
  }
  document.addEventListener("htmx:afterRequest", function (event) {
    var target = event.detail && event.detail.target;
    if (!event.detail.successful || !target || !target.id) return;
    if (target.id === "contacts-board" || target.id === "guide") clearStaleMessages();
  });

  // htmx changes on the contacts board (move, test notification, remove)
  // replace the whole board. Keep keyboard users where they were: back on the
  // same button (e.g. to move a contact up again), else on the same contact's
  // other arrow, else on the message saying what happened.
  var focusKey = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var board = document.getElementById("contacts-board");
    var el = document.activeElement;
    focusKey = null;
    if (board && board.contains(event.target) && el && el.getAttribute) {
      focusKey = el.getAttribute("data-focus-key") || "";
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (focusKey === null) return;
    var board = document.getElementById("contacts-board");
    var key = focusKey;
    focusKey = null;
    if (!board) return;
    var target = null;
    if (key) {
      target = board.querySelector('[data-focus-key="' + key + '"]');
      var move = /^move-(up|down)-(\d+)$/.exec(key);
      if (!target && move) {
        var other = move[1] === "up" ? "down" : "up";
        target = board.querySelector('[data-focus-key="move-' + other + "-" + move[2] + '"]');
      }
    }
    var notice = board.querySelector("[data-board-notice]");
    // An error is read out first, from the message itself (focused); a
    // success is announced while focus stays on the control.
    if (notice && (!target || notice.querySelector(".messagebar--error"))) {
      target = notice;
    } else {
      var live = document.querySelector("[data-board-live]");
      if (live && notice) live.textContent = notice.textContent.replace(/\s+/g, " ").trim();
    }
    if (target) target.focus();
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document); focusFirstError(); });
  } else {
    init(document);
    focusFirstError();
  }
  document.addEventListener("htmx:load", function (event) { init(event.target); });
})();
