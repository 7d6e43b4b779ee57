// egret's one script. Every page works without it; it only improves two things:
// - the sign-in: a Connect form marked data-popup="signin" opens the vendor's sign-in in
//   a popup, and the page updates when egret's callback page reports, from egret's own
//   origin only, that the connection is made. A blocked popup leaves the form to go on
//   in this tab;
// - copying: text marked data-copy (connect links, the redirect URI) gets a Copy button;
//   without the script the text is still selectable in one click.
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

  function addCopyButtons() {
    var marked = document.querySelectorAll('[data-copy]');
    Array.prototype.forEach.call(marked, function (text) {
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'small';
      button.textContent = 'Copy';
      var said = document.createElement('span');
      said.setAttribute('role', 'status');
      said.className = 'help';
      button.addEventListener('click', function () {
        var value = text.textContent;
        var done = function () { said.textContent = 'Copied'; };
        var failed = function () { said.textContent = 'Select the text and copy it'; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(value).then(done, failed);
        } else {
          var range = document.createRange();
          range.selectNodeContents(text);
          var selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          (document.execCommand && document.execCommand('copy')) ? done() : failed();
        }
      });
      text.insertAdjacentElement('afterend', said);
      text.insertAdjacentElement('afterend', button);
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', addCopyButtons);
  } else {
    addCopyButtons();
  }

  window.addEventListener('message', function (event) {
    if (event.origin !== origin || !event.data || event.data.type !== 'egret.connected') {
      return;
    }
    connected = true;
    window.location.reload();
  });
})();
