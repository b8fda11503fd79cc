/*
 * Connections panel embed snippet. Usage (one line):
 *   <script src="https://<platform>/embed.js" data-app="sales_hub" async></script>
 * Optional: data-component="<component link name>", data-height="480px",
 * data-session-token="<token from POST /v1/connect-sessions>" (the panel opens signed in as
 * that end user; without it, the frame offers to sign in).
 * Or from script: ConnectionsPanel.open({ app, token, component, height, container }).
 * Creates an iframe (after the script tag, or in `container`). The panel posts
 * {type, app, connection, environment, at} messages to this page (see the README, "Embedding");
 * check event.origin against the platform's origin before trusting one.
 */
(function () {
  var s = document.currentScript;
  var base = s ? s.src : '';

  function open(o) {
    if (!o || !o.app) throw new Error('ConnectionsPanel.open needs { app }');
    var path = '/embed/' + encodeURIComponent(o.app) + (o.token ? '/session' : '');
    var src = new URL(path, o.base || base);
    if (o.token) src.searchParams.set('token', o.token);
    if (o.component) src.searchParams.set('component', o.component);
    var f = document.createElement('iframe');
    f.src = src.toString();
    f.title = 'Connections';
    f.setAttribute('allow', '');
    f.setAttribute('referrerpolicy', 'no-referrer');
    f.style.cssText = 'width:100%;height:' + (o.height || '480px') + ';border:1px solid #ccd;border-radius:8px';
    if (o.container) o.container.appendChild(f);
    else if (o.after) o.after.parentNode.insertBefore(f, o.after.nextSibling);
    else document.body.appendChild(f);
    return f;
  }

  window.ConnectionsPanel = window.ConnectionsPanel || { open: open };
  if (!s || !s.dataset.app) return;
  open({
    app: s.dataset.app,
    token: s.dataset.sessionToken,
    component: s.dataset.component,
    height: s.dataset.height,
    after: s
  });
})();
