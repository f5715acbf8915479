// Keyboard labeling queue. Every key that labels posts at once; the server
// answers with the next transaction, so the page never holds unsaved work.
"use strict";

(function () {
  const root = document.getElementById("queue");
  if (!root) return;
  const categories = JSON.parse(
    document.getElementById("queue-categories").textContent
  );
  const $ = (id) => document.getElementById(id);
  const search = $("queue-search");
  let data = null; // the last answer of the server
  let highlight = 0; // index into data.choices
  let match = 0; // index into the search matches
  let busy = false; // keys are ignored while a request is in flight

  function showError(message) {
    $("queue-error").textContent = message;
    $("queue-error").hidden = !message;
  }

  function showStatus(text, saving) {
    const status = $("queue-status");
    status.textContent = text;
    status.classList.toggle("saving", Boolean(saving));
  }

  async function call(url, body) {
    busy = true;
    showStatus("saving…", true);
    const options = body === undefined
      ? { credentials: "same-origin" }
      : {
          method: "POST",
          credentials: "same-origin",
          headers: {
            "Content-Type": "application/json",
            "X-CSRFToken": root.dataset.csrf,
          },
          body: JSON.stringify(body),
        };
    try {
      const response = await fetch(url, options);
      let answer;
      try {
        answer = await response.json();
      } catch (_) {
        answer = { error: `The server answered ${response.status}.` };
      }
      if (!response.ok) throw new Error(answer.error || response.statusText);
      showError("");
      return answer;
    } catch (error) {
      showStatus("");
      showError(error.message || "The request failed.");
      return null;
    } finally {
      busy = false;
    }
  }

  function render(answer) {
    data = answer;
    highlight = 0;
    const txn = data.transaction;
    $("queue-left").textContent = data.left;
    $("queue-rate").textContent = data.labels_last_hour;
    $("queue-card").hidden = !txn;
    $("queue-empty").hidden = Boolean(txn);
    if (txn) {
      $("queue-card").dataset.txnId = txn.id;
      $("queue-date").textContent = txn.posted_on;
      $("queue-description").textContent = txn.description;
      $("queue-merchant").textContent = txn.merchant || "(not known yet)";
      const amount = $("queue-amount");
      amount.textContent = `${txn.amount.replace("-", "− ")} ${txn.currency}`;
      amount.className = `queue-amount ${txn.direction}`;
      amount.title = txn.direction === "out" ? "money out" : "money in";
      $("queue-account").textContent = txn.account;
      $("queue-current").textContent = txn.label
        ? `currently ${txn.label.category} (${txn.label.source})`
        : "";
    }
    const suggestion = txn ? data.suggestion : null;
    $("queue-suggestion").hidden = !suggestion;
    $("queue-suggestion").textContent = suggestion
      ? `suggested: ${suggestion.category} ` +
        `${Math.round(suggestion.confidence * 100)}% (a to accept)`
      : "";
    $("queue-merchant-all").disabled = !txn || !txn.merchant;
    renderChoices();
  }

  function renderChoices() {
    const list = $("queue-choices");
    list.replaceChildren();
    data.choices.forEach((name, index) => {
      const item = document.createElement("li");
      item.innerHTML = `<kbd>${index + 1}</kbd>`;
      item.append(name);
      item.dataset.category = name;
      item.classList.toggle("highlight", index === highlight);
      item.addEventListener("click", () => label(name));
      list.append(item);
    });
  }

  function matches() {
    const text = search.value.trim().toLowerCase();
    if (!text) return [];
    const starts = categories.filter((c) => c.toLowerCase().startsWith(text));
    const within = categories.filter(
      (c) => !starts.includes(c) && c.toLowerCase().includes(text)
    );
    return starts.concat(within).slice(0, 10);
  }

  function renderMatches() {
    const list = $("queue-matches");
    list.replaceChildren();
    matches().forEach((name, index) => {
      const item = document.createElement("li");
      item.textContent = name;
      item.classList.toggle("highlight", index === match);
      item.addEventListener("mousedown", (event) => {
        event.preventDefault();
        pickMatch(name);
      });
      list.append(item);
    });
  }

  function closeSearch() {
    search.value = "";
    renderMatches();
    search.blur();
  }

  function pickMatch(name) {
    closeSearch();
    label(name);
  }

  async function label(category) {
    if (busy || !data || !data.transaction) return;
    const answer = await call(root.dataset.labelUrl, {
      txn_id: data.transaction.id,
      category,
    });
    if (answer) {
      render(answer);
      showStatus(`saved: ${category}`);
    }
  }

  async function skip() {
    if (busy || !data || !data.transaction) return;
    const answer = await call(root.dataset.skipUrl, { txn_id: data.transaction.id });
    if (answer) {
      render(answer);
      showStatus("skipped");
    }
  }

  async function undo() {
    if (busy) return;
    const answer = await call(root.dataset.undoUrl, {});
    if (answer) {
      render(answer);
      showStatus("undone");
    }
  }

  async function labelMerchant() {
    if (busy || !data || !data.transaction) return;
    const txn = data.transaction;
    const category = data.choices[highlight];
    const url = `${root.dataset.merchantUrl}?txn_id=${encodeURIComponent(txn.id)}`;
    const info = await call(url);
    if (!info) return;
    showStatus("");
    const question =
      `Label this transaction and ${info.others} other unlabeled ` +
      `transaction(s) of ${info.merchant} as "${category}"?\n` +
      "(Highlight another choice with the arrow keys to pick another category.)";
    if (!window.confirm(question)) return;
    const answer = await call(root.dataset.labelMerchantUrl, {
      txn_id: txn.id,
      category,
    });
    if (answer) {
      render(answer);
      showStatus(`saved: ${category}, and ${answer.saved.rule_labels} by rule`);
    }
  }

  search.addEventListener("input", () => {
    match = 0;
    renderMatches();
  });

  search.addEventListener("keydown", (event) => {
    const found = matches();
    if (event.key === "Enter") {
      event.preventDefault();
      if (found.length) pickMatch(found[Math.min(match, found.length - 1)]);
    } else if (event.key === "Escape") {
      closeSearch();
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      match = Math.max(0, Math.min(found.length - 1, match + step));
      renderMatches();
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.target === search || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    // Leave other form fields (the admin's header has none, but be safe) alone.
    if (["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName)) return;
    if (!data) return;
    const key = event.key;
    if (/^[1-9]$/.test(key)) {
      const category = data.choices[Number(key) - 1];
      if (category) label(category);
    } else if (key === "Enter") {
      if (data.choices[highlight]) label(data.choices[highlight]);
    } else if (key === "ArrowDown" || key === "ArrowUp") {
      const step = key === "ArrowDown" ? 1 : -1;
      highlight = Math.max(0, Math.min(data.choices.length - 1, highlight + step));
      renderChoices();
    } else if (key === "/") {
      search.focus();
    } else if (key === "a") {
      if (data.suggestion) label(data.suggestion.category);
    } else if (key === "s") {
      skip();
    } else if (key === "Backspace") {
      undo();
    } else {
      return;
    }
    event.preventDefault();
  });

  $("queue-merchant-all").addEventListener("click", labelMerchant);

  call(root.dataset.nextUrl).then((answer) => {
    if (answer) {
      render(answer);
      showStatus("");
    }
  });
})();
