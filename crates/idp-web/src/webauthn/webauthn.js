// Latchkey passkeys: the browser side of /webauthn/*. Served as a file so the pages keep a
// strict CSP (script-src 'self', no inline script). The server's options are webauthn-rs
// JSON, with binary fields in base64url; the browser API wants ArrayBuffers, and its answers
// go back in base64url.
"use strict";
(function () {
  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function status(text) {
    var el = document.getElementById("webauthn-status");
    if (el) { el.textContent = text; }
  }
  async function post(url, body) {
    var response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    var json = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      var err = new Error(json.code || ("HTTP " + response.status));
      err.code = json.code; err.operationId = json.operation_id;
      throw err;
    }
    return json;
  }
  function refused(err) {
    if (err && err.code) {
      status("Refused: " + err.code + " (operation " + err.operationId + ")");
    } else {
      status("Cancelled or not possible: " + (err && err.name ? err.name : err));
    }
  }

  async function enrol() {
    try {
      var started = await post("/webauthn/register/start", {});
      var pk = started.options.publicKey;
      pk.challenge = toBytes(pk.challenge);
      pk.user.id = toBytes(pk.user.id);
      (pk.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
      var cred = await navigator.credentials.create({ publicKey: pk });
      var name = (document.getElementById("key-name") || {}).value || "Security key";
      var done = await post("/webauthn/register/finish", {
        handle: started.handle,
        name: name,
        credential: {
          id: cred.id,
          rawId: toB64url(cred.rawId),
          type: cred.type,
          response: {
            attestationObject: toB64url(cred.response.attestationObject),
            clientDataJSON: toB64url(cred.response.clientDataJSON),
          },
          extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
        },
      });
      status("Enrolled: " + done.name);
      if (done.recovery_codes) { showCodes(done.recovery_codes); }
    } catch (err) { refused(err); }
  }

  // A first factor's recovery codes: in this answer only, so shown now, as text.
  function showCodes(codes) {
    var list = document.getElementById("recovery-codes");
    var box = document.getElementById("new-recovery-codes");
    if (!list || !box) { return; }
    codes.forEach(function (code) {
      var item = document.createElement("li");
      var text = document.createElement("code");
      text.textContent = code;
      item.appendChild(text);
      list.appendChild(item);
    });
    box.hidden = false;
  }

  // An assertion from navigator.credentials.get, as webauthn-rs reads it.
  function assertion(cred) {
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toB64url(cred.response.authenticatorData),
        clientDataJSON: toB64url(cred.response.clientDataJSON),
        signature: toB64url(cred.response.signature),
        userHandle: cred.response.userHandle ? toB64url(cred.response.userHandle) : null,
      },
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    };
  }
  async function get(started) {
    var pk = started.options.publicKey;
    pk.challenge = toBytes(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return navigator.credentials.get({ publicKey: pk });
  }
  // Where to go afterwards: the button's data-continue / data-then (the page's own
  // hidden fields), else the address bar's ?continue= (the bare /webauthn page).
  function flow(button) {
    var params = new URLSearchParams(window.location.search);
    return {
      continue: (button && button.dataset.continue) || params.get("continue"),
      then: (button && button.dataset.then) || params.get("then"),
    };
  }

  // A passkey alone: no name, no password.
  async function signIn(event) {
    try {
      var started = await post("/webauthn/login/start", {});
      var cred = await get(started);
      var done = await post("/webauthn/login/finish", {
        handle: started.handle,
        continue: flow(event.currentTarget).continue,
        credential: assertion(cred),
      });
      window.location.assign(done.redirect);
    } catch (err) { refused(err); }
  }

  // One of the signed-in user's keys, after the password (or to step up).
  async function secondFactor(event) {
    var where = flow(event.currentTarget);
    try {
      var started = await post("/webauthn/second-factor/start", {});
      var cred = await get(started);
      var done = await post("/webauthn/second-factor/finish", {
        handle: started.handle,
        continue: where.continue,
        then: where.then,
        credential: assertion(cred),
      });
      window.location.assign(done.redirect);
    } catch (err) { refused(err); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var e = document.getElementById("enrol");
    if (e) { e.addEventListener("click", enrol); }
    var s = document.getElementById("passkey-sign-in");
    if (s) { s.addEventListener("click", signIn); }
    var k = document.getElementById("security-key");
    if (k) { k.addEventListener("click", secondFactor); }
  });
})();
