// Portcullis passkeys: the WebAuthn ceremonies of the account and sign-in pages,
// and nothing else. Every page works without this script for password sign-in.
//
// A page opts in with elements carrying data attributes:
//   form[data-passkey-register]  adds a passkey: posts the form to data-start (the
//                                CSRF token, the password again), creates the
//                                credential, posts it to data-finish.
//   [data-passkey-sign-in]       a "Sign in with a passkey" button (modal get), and
//                                conditional UI on input[autocomplete~=webauthn].
// Each answer is JSON: {ceremony, options} to start, {location} when done; any
// refusal shows one generic message in the element's [aria-live] region.
'use strict';
(function () {
  const PKC = window.PublicKeyCredential;
  if (!PKC || !navigator.credentials) return;

  const GENERIC = 'The passkey could not be used. Please try again.';
  const b64u = {
    dec: (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') +
      '='.repeat((4 - s.length % 4) % 4)), (c) => c.charCodeAt(0)).buffer,
    enc: (b) => {
      let s = '';
      for (const x of new Uint8Array(b)) s += String.fromCharCode(x);
      return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    },
  };
  const creationOptions = (pk) => PKC.parseCreationOptionsFromJSON
    ? PKC.parseCreationOptionsFromJSON(pk)
    : Object.assign({}, pk, {
      challenge: b64u.dec(pk.challenge),
      user: Object.assign({}, pk.user, { id: b64u.dec(pk.user.id) }),
      excludeCredentials: (pk.excludeCredentials || []).map((c) => Object.assign({}, c, { id: b64u.dec(c.id) })),
    });
  const requestOptions = (pk) => PKC.parseRequestOptionsFromJSON
    ? PKC.parseRequestOptionsFromJSON(pk)
    : Object.assign({}, pk, {
      challenge: b64u.dec(pk.challenge),
      allowCredentials: (pk.allowCredentials || []).map((c) => Object.assign({}, c, { id: b64u.dec(c.id) })),
    });
  const credentialJSON = (c) => {
    if (typeof c.toJSON === 'function') return c.toJSON();
    const r = c.response;
    const o = {
      id: c.id, rawId: b64u.enc(c.rawId), type: c.type,
      clientExtensionResults: c.getClientExtensionResults(),
      response: { clientDataJSON: b64u.enc(r.clientDataJSON) },
    };
    if (r.attestationObject) {
      o.response.attestationObject = b64u.enc(r.attestationObject);
      if (r.getTransports) o.response.transports = r.getTransports();
    } else {
      o.response.authenticatorData = b64u.enc(r.authenticatorData);
      o.response.signature = b64u.enc(r.signature);
      if (r.userHandle) o.response.userHandle = b64u.enc(r.userHandle);
    }
    return o;
  };

  // Posts `fields` as a form; the JSON answer, or {error} for a refusal.
  async function post(url, fields) {
    const response = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields),
    });
    if (!response.ok) return { error: GENERIC };
    return response.json();
  }

  // Goes where the server says: a reload when that is this page (a new fragment
  // alone would not load it again).
  function go(location) {
    const target = new URL(location, window.location.href);
    const here = window.location;
    if (target.pathname === here.pathname && target.search === here.search) {
      here.hash = target.hash;
      here.reload();
    } else {
      here.assign(target.href);
    }
  }

  function say(region, message) {
    if (region) region.textContent = message;
  }

  // Adding a passkey on an account page.
  for (const form of document.querySelectorAll('form[data-passkey-register]')) {
    form.hidden = false;
    const region = form.querySelector('[aria-live]');
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      say(region, '');
      const fields = new FormData(form);
      try {
        const started = await post(form.dataset.start, fields);
        if (started.error) return say(region, GENERIC);
        const created = await navigator.credentials.create({
          publicKey: creationOptions(started.options.publicKey),
        });
        const done = await post(form.dataset.finish, {
          csrf: fields.get('csrf') || '',
          name: fields.get('name') || '',
          ceremony: started.ceremony,
          credential: JSON.stringify(credentialJSON(created)),
        });
        if (done.error) return say(region, GENERIC);
        go(done.location);
      } catch (_) {
        say(region, GENERIC);
      }
    });
  }

  // Signing in with a passkey.
  for (const box of document.querySelectorAll('[data-passkey-sign-in]')) {
    box.hidden = false;
    const region = box.querySelector('[aria-live]');
    const button = box.querySelector('button');
    const extra = {};
    if (box.dataset.next !== undefined) extra.next = box.dataset.next;
    if (box.dataset.rd !== undefined) extra.rd = box.dataset.rd;
    let waiting = null;

    async function signIn(conditional) {
      const started = await post(box.dataset.start, {});
      if (started.error) {
        if (!conditional) say(region, GENERIC);
        return;
      }
      const request = { publicKey: requestOptions(started.options.publicKey) };
      if (conditional) {
        waiting = new AbortController();
        request.mediation = 'conditional';
        request.signal = waiting.signal;
      }
      const assertion = await navigator.credentials.get(request);
      const done = await post(box.dataset.finish, Object.assign({}, extra, {
        ceremony: started.ceremony,
        credential: JSON.stringify(credentialJSON(assertion)),
      }));
      if (done.error) return say(region, GENERIC);
      go(done.location);
    }

    button.addEventListener('click', async () => {
      say(region, '');
      if (waiting) { waiting.abort(); waiting = null; }
      try { await signIn(false); } catch (_) { say(region, GENERIC); }
    });

    // Conditional UI: the browser offers passkeys in the e-mail field's autofill.
    if (document.querySelector('input[autocomplete~="webauthn"]') &&
        PKC.isConditionalMediationAvailable) {
      PKC.isConditionalMediationAvailable().then((available) => {
        if (available) signIn(true).catch(() => { /* aborted, or dismissed */ });
      }).catch(() => {});
    }
  }
}());
