// Keep the progress of queued and running jobs current without reloading the
// page: every few seconds, ask the admin for the jobs still in progress and
// replace their progress cells (and, on a job's page, its status and log).
(function () {
  "use strict";

  const POLL_MS = 2000;
  const ACTIVE = new Set(["queued", "running"]);
  const script = document.currentScript;
  const endpoint = script.dataset.endpoint;

  function activeIds() {
    return Array.from(document.querySelectorAll(".job-progress"))
      .filter((cell) => ACTIVE.has(cell.dataset.status))
      .map((cell) => cell.dataset.jobId);
  }

  function setField(name, value) {
    const field = document.querySelector(`.field-${name} .readonly`);
    if (field) {
      field.textContent = value || "—";
    }
  }

  async function poll() {
    const ids = activeIds();
    if (ids.length === 0) {
      return;
    }
    try {
      const response = await fetch(`${endpoint}?ids=${ids.join(",")}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) {
        return;
      }
      const jobs = await response.json();
      for (const [id, job] of Object.entries(jobs)) {
        for (const cell of document.querySelectorAll(
          `.job-progress[data-job-id="${id}"]`
        )) {
          cell.outerHTML = job.progress;
        }
        setField("status", job.status);
        setField("duration", job.duration);
        setField("error", job.error);
        const log = document.querySelector(".field-log .readonly");
        if (log && job.log_tail) {
          log.innerHTML = "";
          const pre = document.createElement("pre");
          pre.textContent = job.log_tail;
          log.appendChild(pre);
        }
      }
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  setTimeout(poll, POLL_MS);
})();
