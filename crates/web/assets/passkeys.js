// latchkey's passkey calls (WebAuthn), loaded only by the sign-in and account pages.
// Every other form on those pages works without it.
//
// It asks latchkey for options (a form post carrying the page's CSRF token), hands them to the
// browser (navigator.credentials.create / get), and posts the browser's answer, as the JSON of
// PublicKeyCredential.toJSON(), in an ordinary form, so latchkey answers with a redirect.
(function () {
  "use strict";

  var PKC = window.PublicKeyCredential;
  var supported = !!(PKC && PKC.parseRequestOptionsFromJSON && PKC.parseCreationOptionsFromJSON &&
    navigator.credentials);

  function say(form, text) {
    var out = form.querySelector(".passkey-error");
    if (out) {
      out.textContent = text;
      out.hidden = false;
    }
  }

  function fetchOptions(url, form) {
    var body = new URLSearchParams();
    body.set("csrf_token", form.elements.csrf_token.value);
    return fetch(url, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () {
          throw new Error("Reload the page and try again.");
        }).then(function (data) {
          if (!response.ok) {
            throw new Error(data.error || "Passkeys are unavailable right now.");
          }
          return data;
        });
      });
  }

  function post(form, credential) {
    form.elements.credential.value = JSON.stringify(credential.toJSON());
    form.submit();
  }

  // Sign-in: passkey autofill on the address field (conditional mediation) and a button.
  var signIn = document.getElementById("passkey-sign-in");
  if (signIn && supported) {
    var button = document.getElementById("passkey-button");
    var pending = null;
    var run = function (mediation) {
      if (pending) {
        pending.abort();
      }
      var controller = new AbortController();
      pending = controller;
      return fetchOptions("/sign-in/passkey/options", signIn).then(function (options) {
        return navigator.credentials.get({
          publicKey: PKC.parseRequestOptionsFromJSON(options),
          mediation: mediation,
          signal: controller.signal
        });
      }).then(function (credential) {
        if (credential) {
          post(signIn, credential);
        }
      });
    };
    button.hidden = false;
    button.addEventListener("click", function () {
      run("optional").catch(function (error) {
        if (error.name !== "AbortError") {
          say(signIn, error.name === "NotAllowedError" ? "No passkey was used." : error.message);
        }
      });
    });
    if (PKC.isConditionalMediationAvailable) {
      PKC.isConditionalMediationAvailable().then(function (available) {
        if (available) {
          run("conditional").catch(function () {});
        }
      });
    }
  }

  // Account page: registering a passkey under the name typed.
  var register = document.getElementById("passkey-register");
  if (register && supported) {
    register.hidden = false;
    var note = document.getElementById("passkey-needs-script");
    if (note) {
      note.hidden = true;
    }
    register.addEventListener("submit", function (event) {
      event.preventDefault();
      fetchOptions("/user/passkeys/options", register).then(function (options) {
        return navigator.credentials.create({ publicKey: PKC.parseCreationOptionsFromJSON(options) });
      }).then(function (credential) {
        if (credential) {
          post(register, credential);
        }
      }).catch(function (error) {
        say(register, error.name === "NotAllowedError" || error.name === "AbortError"
          ? "No passkey was made." : error.message);
      });
    });
  }
})();
