  var q = new URLSearchParams(location.search), m = {type: "connections:oauth_handoff", flow: {{flow}}};
  ["code", "iss", "error", "error_description"].forEach(function (k) { if (q.has(k)) m[k] = q.get(k) });
  history.replaceState(null, "", location.pathname);
  if (window.opener) {
    window.opener.postMessage(m,location.origin);
    document.getElementById("s").textContent = "Finishing in the window you started from…";
    setTimeout(function () { window.close() }, 1500)
  }
