  if (window.opener) {
    window.opener.postMessage({type: "connections:oauth", flow: {{flow}}, outcome: "{{outcome}}"}, location.origin);
    setTimeout(function () { window.close() }, 1500)
  }
