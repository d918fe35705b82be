/* SmartUnion console: progressive enhancement only. Every page works without this file
   (CSP allows scripts from 'self' only; nothing here is inline).
   1. Organisation tree: expand a node in place by fetching its children as an HTML
      fragment (/console/orgs/{id}/children) instead of reloading the page.
   2. Table rows with data-href open their record when clicked anywhere in the row.
   3. A button with data-print opens the browser's print dialogue. */
(function () {
  "use strict";

  function toggleLabel(toggle, expanded) {
    var mark = toggle.querySelector("[aria-hidden]");
    if (mark) { mark.textContent = expanded ? "\u2212" : "+"; }
    toggle.setAttribute("aria-expanded", expanded ? "true" : "false");
  }

  function onToggle(event) {
    var toggle = event.target.closest("a.tree-toggle[data-children-url]");
    if (!toggle || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) {
      return;
    }
    event.preventDefault();
    var node = toggle.closest(".tree-node");
    var childList = node && node.querySelector(":scope > ul.tree");
    if (childList) {
      var show = childList.hidden;
      childList.hidden = !show;
      toggleLabel(toggle, show);
      return;
    }
    if (toggle.classList.contains("is-loading")) { return; }
    toggle.classList.add("is-loading");
    fetch(toggle.getAttribute("data-children-url"), {
      credentials: "same-origin",
      headers: { "Accept": "text/html" }
    }).then(function (response) {
      if (!response.ok || response.redirected) { throw new Error(String(response.status)); }
      return response.text();
    }).then(function (html) {
      // The fragment is server-rendered with autoescaping; parse it inertly, then adopt
      // only the <ul class="tree"> it contains.
      var doc = new DOMParser().parseFromString(html, "text/html");
      var list = doc.querySelector("ul.tree");
      if (!list) { throw new Error("no tree in fragment"); }
      node.appendChild(document.adoptNode(list));
      toggleLabel(toggle, true);
    }).catch(function () {
      // Fall back to the server-rendered expansion.
      window.location.assign(toggle.href);
    }).finally(function () {
      toggle.classList.remove("is-loading");
    });
  }

  function onRowClick(event) {
    if (event.defaultPrevented || event.button !== 0) { return; }
    if (event.target.closest("a, button, input, select, textarea, label")) { return; }
    var selection = window.getSelection && window.getSelection();
    if (selection && String(selection).length > 0) { return; } // the user is selecting text
    var row = event.target.closest("tr[data-href]");
    if (!row) { return; }
    var href = row.getAttribute("data-href");
    if (href && href.charAt(0) === "/" && href.charAt(1) !== "/") {
      window.location.assign(href);
    }
  }

  function onPrint(event) {
    if (event.target.closest("[data-print]")) { window.print(); }
  }

  document.addEventListener("click", function (event) {
    onToggle(event);
    onRowClick(event);
    onPrint(event);
  });
})();
