// Keyboard shortcuts and bulk selection for the moderation dashboard. Every page works without
// this file (plain links, checkboxes and buttons); it only saves the moderator the mouse.
// Keys are listed in the "?" dialog (base.html) and in docs/dashboard.md.
"use strict";

(function () {
  const bulk = document.getElementById("bulk");
  const rows = Array.from(document.querySelectorAll("table[data-rows] tbody tr"));
  const cards = Array.from(document.querySelectorAll("article.exchange"));
  const items = rows.length ? rows : cards;
  let current = -1;
  let pendingGo = false;

  function boxes() {
    return rows.map((row) => row.querySelector("input[name=ids]")).filter(Boolean);
  }

  function showCount() {
    const label = document.querySelector("[data-selected]");
    if (!label) return;
    const picked = boxes().filter((box) => box.checked).length;
    label.textContent = picked + " selected";
    const all = document.querySelector("[data-select-all]");
    if (all) all.checked = picked > 0 && picked === boxes().length;
  }

  function move(step) {
    if (!items.length) return;
    if (current >= 0) items[current].classList.remove("current");
    current = Math.max(0, Math.min(items.length - 1, current + step));
    const item = items[current];
    item.classList.add("current");
    const target = item.querySelector("a.open") || item.querySelector("summary");
    if (target) target.focus({ preventScroll: true });
    item.scrollIntoView({ block: "nearest" });
  }

  function open() {
    if (current < 0) return;
    const item = items[current];
    if (item.dataset.href) {
      window.location.href = item.dataset.href;
      return;
    }
    const fold = item.querySelector("details.fold");
    if (fold) fold.open = !fold.open;
  }

  function toggle(row) {
    const box = row && row.querySelector("input[name=ids]");
    if (box) box.checked = !box.checked;
    showCount();
  }

  function selectAll() {
    const all = boxes();
    const every = all.length > 0 && all.every((box) => box.checked);
    all.forEach((box) => {
      box.checked = !every;
    });
    showCount();
  }

  // r / f / v on the list: act on the selection (or the current row), asking for the reason first.
  function ask(action) {
    if (!bulk) return false;
    if (!boxes().some((box) => box.checked) && current >= 0) toggle(rows[current]);
    bulk.dataset.action = action;
    const why = bulk.querySelector("input[name=text]");
    why.placeholder = action + ": why? then Enter";
    why.focus();
    return true;
  }

  // f / r / v in a conversation: the current exchange's own flag, resolution or review form.
  function cardForm(action) {
    const card = current >= 0 ? cards[current] : document.querySelector("article.focus");
    if (!card) return;
    const fold = card.querySelector("details.fold");
    if (fold) fold.open = true;
    let field = null;
    if (action === "flag") {
      const form = card.querySelector("form[action$='/flag']");
      if (form) {
        form.closest("details").open = true;
        field = form.querySelector("input[name=reason]");
      }
    } else if (action === "review") {
      field = card.querySelector("form[action$='/review'] input[name=reason]");
    } else {
      field = card.querySelector("form[action$='/resolve'] input[name=note]");
    }
    if (field) field.focus();
  }

  if (bulk) {
    const why = bulk.querySelector("input[name=text]");
    why.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && bulk.dataset.action) {
        event.preventDefault();
        bulk.querySelector("button[value=" + bulk.dataset.action + "]").click();
      }
    });
    boxes().forEach((box) => box.addEventListener("change", showCount));
    const all = document.querySelector("[data-select-all]");
    if (all) all.addEventListener("change", () => {
      boxes().forEach((box) => {
        box.checked = all.checked;
      });
      showCount();
    });
    showCount();
  }

  const unfold = document.querySelector("[data-unfold-all]");
  if (unfold) unfold.addEventListener("click", (event) => {
    event.preventDefault();
    document.querySelectorAll("details.fold").forEach((fold) => {
      fold.open = true;
    });
  });

  const places = { q: "/queue", e: "/exchanges", n: "/unanswered", s: "/stats" };

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    // A ticked checkbox keeps focus, yet takes no text: the keys still act.
    const typing = event.target.closest(
      "input:not([type=checkbox]), textarea, select, [contenteditable]"
    );
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (pendingGo) {
      pendingGo = false;
      if (places[event.key]) {
        window.location.href = places[event.key];
        event.preventDefault();
      }
      return;
    }
    const dialog = document.getElementById("keymap");
    let handled = true;
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "o": open(); break;
      case "Enter":
        if (current < 0 || rows.length === 0) handled = false;
        else open();
        break;
      case "x": toggle(rows[current]); break;
      case "a": selectAll(); break;
      case "r": if (!ask("resolve")) cardForm("resolve"); break;
      case "f": if (!ask("flag")) cardForm("flag"); break;
      case "v": if (!ask("review")) cardForm("review"); break;
      case "u": {
        const back = document.querySelector("[data-back]");
        if (back) window.location.href = back.href;
        break;
      }
      case "/": {
        const search = document.querySelector("[data-search]");
        if (search) search.focus();
        else handled = false;
        break;
      }
      case "g": pendingGo = true; break;
      case "?": if (dialog && !dialog.open) dialog.showModal(); break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  });
  // Keyboard hints are shown only once the keys work.
  document.documentElement.dataset.keys = "on";
})();
