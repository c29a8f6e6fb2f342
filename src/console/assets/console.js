// biller-inbox console: progressive enhancement only. Every page works without this file.
// 1. Times are shown in UTC; hovering one shows the reader's local time.
// 2. A page whose <main> has data-refresh="N" reloads its content in place every N seconds.
"use strict";

function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when)) {
      el.title = when.toLocaleString(undefined, { timeZoneName: "short" }) + " (local time)";
    }
  }
}

function refreshInPlace(main) {
  const seconds = parseInt(main.dataset.refresh, 10);
  if (!(seconds > 0)) return;
  const status = document.createElement("p");
  status.className = "refresh-status";
  status.setAttribute("role", "status");
  async function refresh() {
    try {
      const res = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!res.ok || res.redirected) {
        status.textContent = "Automatic refresh stopped (signed out or the server did not answer). Reload the page.";
        main.prepend(status);
        return;
      }
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const fresh = doc.querySelector("main");
      if (fresh) {
        main.replaceChildren(...fresh.childNodes);
        localTimes(main);
      }
    } catch (e) {
      status.textContent = "Automatic refresh failed; retrying.";
      main.prepend(status);
    }
    setTimeout(refresh, seconds * 1000);
  }
  setTimeout(refresh, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  const main = document.querySelector("main[data-refresh]");
  if (main) refreshInPlace(main);
});
