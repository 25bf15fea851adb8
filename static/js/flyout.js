// Flyouts and confirmation dialogs: one pattern for every confirmation and small edit.
//
// A link or a form marked data-flyout="dialog" (a centred Fluent Dialog, for confirmations) or data-flyout="drawer"
// (a Fluent OverlayDrawer from the right, for edits) opens the region marked data-flyout-content of the page it leads
// to, inside a native modal <dialog>: the rest of the page is inert (focus stays inside), Escape or Cancel closes it
// and focus returns to the control that opened it. That page is an ordinary page too: a deep link, a new tab, or any
// browser without this file gets it whole, with the same form. Forms inside post as plain forms.
(function () {
  "use strict";

  var dialog = null;
  var opener = null;

  function host() {
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    dialog.id = "flyout";
    document.body.appendChild(dialog);
    dialog.addEventListener("close", function () {
      dialog.replaceChildren();
      if (opener && document.contains(opener)) opener.focus();
      opener = null;
    });
    // A click on the backdrop (the dialog element itself, outside its box) closes it, as in Fluent.
    dialog.addEventListener("click", function (event) {
      if (event.target === dialog) dialog.close();
      var close = event.target.closest && event.target.closest("[data-flyout-close]");
      if (close) {
        event.preventDefault();
        dialog.close();
      }
    });
    return dialog;
  }

  function show(kind, html, fallbackUrl) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var content = doc.querySelector("[data-flyout-content]");
    if (!content) {
      window.location.assign(fallbackUrl);
      return;
    }
    var box = host();
    box.className = kind === "drawer" ? "drawer" : "confirm-dialog";
    var title = content.querySelector("[data-flyout-title]");
    var node = document.importNode(content, true);
    node.classList.add("flyout__content");
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn btn--subtle btn--icon flyout__close";
    close.setAttribute("data-flyout-close", "");
    close.setAttribute("aria-label", "Close");
    close.innerHTML = '<svg class="icon" aria-hidden="true" focusable="false"><use href="' +
      (document.body.getAttribute("data-icons") || "") + '#dismiss"></use></svg>';
    box.replaceChildren(close, node);
    if (title && title.id) box.setAttribute("aria-labelledby", title.id);
    else box.removeAttribute("aria-labelledby");
    var describe = node.querySelector("[data-flyout-description]");
    if (describe && describe.id) box.setAttribute("aria-describedby", describe.id);
    else box.removeAttribute("aria-describedby");
    if (window.htmx) window.htmx.process(box);
    box.showModal();
    var first = node.querySelector("[autofocus]") || node.querySelector("input:not([type=hidden]), select, textarea, button");
    if (first) first.focus();
  }

  function open(kind, trigger, url, init) {
    opener = trigger;
    init.credentials = "same-origin";
    init.headers = { "X-Flyout": "1" };
    fetch(url, init)
      .then(function (response) {
        if (response.redirected || !response.ok) {
          // Nothing to confirm any more (already removed, or an error page): show that page itself.
          window.location.assign(response.url || url);
          return null;
        }
        return response.text();
      })
      .then(function (html) {
        if (html !== null) show(kind, html, url);
      })
      .catch(function () {
        window.location.assign(url);
      });
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-flyout]");
    if (!link) return;
    // Ctrl/Cmd/Shift-click and middle-click keep the browser's meaning: the page in a new tab or window.
    if (event.defaultPrevented || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    open(link.getAttribute("data-flyout"), link, link.href, { method: "GET" });
  });

  // A form marked data-flyout asks its server first: the server answers an unconfirmed post with the confirmation page.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-flyout")) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    var method = (form.getAttribute("method") || "get").toUpperCase();
    var init = { method: method };
    var url = form.action;
    if (method === "GET") url += (url.indexOf("?") < 0 ? "?" : "&") + new URLSearchParams(new FormData(form)).toString();
    else init.body = new FormData(form);
    open(form.getAttribute("data-flyout"), event.submitter || form.querySelector("button"), url, init);
  }, true);
})();
