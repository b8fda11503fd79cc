/*
 * Connections panel embed snippet. Usage (one line):
 *   <script src="https://<platform>/embed.js" data-app="sales_hub" async></script>
 * Optional: data-component="<component link name>", data-height="480px".
 * Creates an iframe right after the script tag. The panel posts
 * {type, app, connection, environment, at} messages to this page (see the README, "Embedding");
 * check event.origin against the platform's origin before trusting one.
 */
(function () {
  var s = document.currentScript;
  if (!s || !s.dataset.app) return;
  var src = new URL('/embed/' + encodeURIComponent(s.dataset.app), s.src);
  if (s.dataset.component) src.searchParams.set('component', s.dataset.component);
  var f = document.createElement('iframe');
  f.src = src.toString();
  f.title = 'Connections';
  f.setAttribute('allow', '');
  f.style.cssText = 'width:100%;height:' + (s.dataset.height || '480px') + ';border:1px solid #ccd;border-radius:8px';
  s.parentNode.insertBefore(f, s.nextSibling);
})();
