// Quotaflow console: the only script. No inline code anywhere (the policy forbids it).
// 1. Copy buttons for secrets shown once. 2. Confirmation before revoking.
// 3. The overview's live part, fetched again every few seconds and swapped in without a reload.
(() => {
  "use strict";

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const field = document.getElementById(button.dataset.copy);
    if (!field) return;
    const done = () => { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, () => { field.select(); });
    } else {
      field.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected */ }
    }
  });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  const live = document.querySelector("[data-live-src]");
  if (!live) return;
  let etag = "";
  const refresh = async () => {
    if (document.hidden) return; // nobody is looking: no poll
    try {
      const headers = { Accept: "text/html" };
      if (etag) headers["If-None-Match"] = etag;
      const response = await fetch(live.dataset.liveSrc, { credentials: "same-origin", cache: "no-store", headers });
      if (response.redirected || response.status === 401) { window.location.assign("/console/login"); return; }
      if (response.status === 304) { live.dataset.liveState = "live"; return; }
      if (!response.ok) { live.dataset.liveState = "error"; return; }
      etag = response.headers.get("ETag") || "";
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      live.replaceChildren(...Array.from(doc.body.childNodes).map((n) => document.importNode(n, true)));
      live.dataset.liveState = "live";
    } catch (e) {
      live.dataset.liveState = "offline";
    }
  };
  window.setInterval(refresh, 3000);
})();
