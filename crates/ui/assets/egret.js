// egret's one script. Every page works without it; it only improves the sign-in:
// a Connect form marked data-popup="signin" opens the vendor's sign-in in a popup, and
// the page updates when egret's callback page reports, from egret's own origin only,
// that the connection is made. A blocked popup leaves the form to go on in this tab.
(function () {
  'use strict';
  var origin = window.location.origin;
  var connected = false;

  function say(form, text) {
    var p = form.querySelector('.status');
    if (!p) {
      p = document.createElement('p');
      p.className = 'status';
      p.setAttribute('role', 'status');
      form.appendChild(p);
    }
    p.textContent = text;
  }

  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) {
      return;
    }
    // Destructive actions ask first.
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    if (form.dataset.popup !== 'signin') {
      return;
    }
    var popup = window.open('about:blank', 'egret-signin', 'popup,width=520,height=720');
    if (!popup) {
      return;
    }
    form.target = 'egret-signin';
    say(form, 'Finish signing in in the window that opened.');
    var watch = window.setInterval(function () {
      if (popup.closed) {
        window.clearInterval(watch);
        if (!connected) {
          say(form, 'The sign-in window was closed before it finished. Press the button to try again.');
          form.removeAttribute('target');
        }
      }
    }, 500);
  });

  window.addEventListener('message', function (event) {
    if (event.origin !== origin || !event.data || event.data.type !== 'egret.connected') {
      return;
    }
    connected = true;
    window.location.reload();
  });
})();
