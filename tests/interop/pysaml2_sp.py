#!/usr/bin/env python3
"""pysaml2 as a real SP against a running `latchkey serve` (crates/cli/tests/serve_interop.rs).

pysaml2 fetches the IdP's metadata over HTTP, then plays a browser (requests.Session, with
its cookie jar) through the whole sign-in: its signed HTTP-Redirect AuthnRequest, the IdP's
303 to the same-site continue URL, the login form (with its CSRF token), the second-factor pages when
asked (idp_browser.py, codes from pyotp), and the auto-POST
page, whose SAMLResponse pysaml2 then validates as an SP does. Prints one JSON object.

  sp-initiated       {"request_id", "in_response_to", "name_id", "name_id_format", "issuer",
                      "session_index", "ava", "relay_state"} (signed HTTP-Redirect request)
  sp-initiated-post  the same with an enveloped-signed HTTP-POST request
  idp-initiated      the same for /saml/init/<app id> (an unsolicited Response)
  sp-initiated-mfa   {"first", "stepped_up"}, each as above with "authn_context" and the
                     IdP pages seen: a plain sign-in, then one requesting REFEDS MFA in the
                     same browser, which steps the IdP session up (a pyotp code for
                     --totp-secret, after step --totp-last-step; or enrolment on the way)

Run with the oracle venv (LATCHKEY_PYTHON); xmlsec1 must be on PATH.
"""

import argparse
import base64
import html
import json
import re
import shutil
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")

import requests  # noqa: E402
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT  # noqa: E402
from saml2.saml import AuthnContextClassRef  # noqa: E402
from saml2.samlp import RequestedAuthnContext  # noqa: E402
from saml2.client import Saml2Client  # noqa: E402
from saml2.config import SPConfig  # noqa: E402
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256  # noqa: E402

import idp_browser  # noqa: E402  (beside this script)
from idp_browser import Person, field  # noqa: E402

REFEDS_MFA = "https://refeds.org/profile/mfa"


def client(a):
    xmlsec = shutil.which("xmlsec1")
    if not xmlsec:
        sys.exit("xmlsec1 not found on PATH (pysaml2 needs it)")
    metadata = requests.get(a.base + "/saml/metadata", timeout=10)
    metadata.raise_for_status()
    md_file = tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False)
    md_file.write(metadata.text)
    md_file.close()
    conf = {
        "entityid": a.sp_entity_id,
        "key_file": a.key,
        "cert_file": a.cert,
        "xmlsec_binary": xmlsec,
        "service": {
            "sp": {
                "endpoints": {"assertion_consumer_service": [(a.acs, BINDING_HTTP_POST)]},
                "authn_requests_signed": True,
                "want_response_signed": False,
                "want_assertions_signed": True,
                "allow_unsolicited": a.cmd == "idp-initiated",
            }
        },
        "metadata": {"local": [md_file.name]},
    }
    return Saml2Client(config=SPConfig().load(conf))


def browse_to_acs(a, browser, url, person=None):
    """Follows the IdP's redirects, signs in when asked, and returns the auto-POST page."""
    return idp_browser.browse_to_acs(a.base, browser, url, person or Person(a.username, a.password))


def finish(a, sp, page, request_id):
    action = re.search(r'<form method="post" action="([^"]*)"', page.text)
    if not action or html.unescape(action.group(1)) != a.acs:
        sys.exit("auto-POST page does not post to the ACS: %s" % page.text[:500])
    csp = page.headers.get("Content-Security-Policy", "")
    if "script-src 'sha256-" not in csp:
        sys.exit("auto-POST page lacks the hashed script CSP: %s" % csp)
    saml_response = field(page.text, "SAMLResponse")
    outstanding = {request_id: "/"} if request_id else {}
    resp = sp.parse_authn_request_response(saml_response, BINDING_HTTP_POST, outstanding=outstanding)
    if resp is None:
        sys.exit("pysaml2 returned no response")
    info = resp.session_info()
    xml = base64.b64decode(saml_response).decode()
    m = re.search(r'InResponseTo="([^"]*)"', xml)
    authn = resp.authn_info()
    return {
        "authn_context": authn[0][0] if authn else None,
        "authn_instant": authn[0][2] if authn else None,
        "request_id": request_id,
        "in_response_to": m.group(1) if m else None,
        "issuer": resp.issuer(),
        "name_id": resp.name_id.text,
        "name_id_format": resp.name_id.format,
        "session_index": info.get("session_index"),
        "ava": resp.ava,
        "relay_state": field(page.text, "RelayState"),
    }


def sp_initiated(a, sp, browser, person, relay_state, **request_args):
    """One signed HTTP-Redirect sign-in in `browser`; `request_args` go to the AuthnRequest."""
    idp_entity_id = list(sp.metadata.keys())[0]
    request_id, info = sp.prepare_for_authenticate(
        entityid=idp_entity_id,
        relay_state=relay_state,
        binding=BINDING_HTTP_REDIRECT,
        sign=True,
        sigalg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
        **request_args,
    )
    location = dict(info["headers"])["Location"]
    page = browse_to_acs(a, browser, location, person)
    return finish(a, sp, page, request_id)


def cmd_sp_initiated(a):
    return sp_initiated(a, client(a), requests.Session(), None, "interop-relay")


def cmd_sp_initiated_mfa(a):
    """An SP that requests REFEDS MFA (exact), in one browser: a plain sign-in first (the
    password), then the request for MFA, which the same IdP session meets after a step-up:
    a code for the TOTP secret given (or an enrolment on the way, when none is)."""
    sp = client(a)
    person = Person(a.username, a.password, a.totp_secret)
    person.last_step = a.totp_last_step
    browser = requests.Session()
    wants_mfa = RequestedAuthnContext(
        authn_context_class_ref=[AuthnContextClassRef(text=REFEDS_MFA)], comparison="exact"
    )
    first = sp_initiated(a, sp, browser, person, "plain")
    first["idp_pages"] = person.pages
    person.pages = []
    stepped = sp_initiated(a, sp, browser, person, "mfa", requested_authn_context=wants_mfa)
    stepped["idp_pages"] = person.pages
    return {"first": first, "stepped_up": stepped}


def cmd_sp_initiated_post(a):
    sp = client(a)
    idp_entity_id = list(sp.metadata.keys())[0]
    destination = sp.metadata.single_sign_on_service(idp_entity_id, BINDING_HTTP_POST)[0]["location"]
    request_id, request = sp.create_authn_request(
        destination, sign=True, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256, binding=BINDING_HTTP_POST
    )
    encoded = base64.b64encode(str(request).encode()).decode()
    browser = requests.Session()
    # The cross-site form post: the IdP must park it and continue on a same-site GET.
    r = browser.post(
        destination,
        data={"SAMLRequest": encoded, "RelayState": "interop-post"},
        allow_redirects=False,
        timeout=10,
    )
    if r.status_code != 303:
        sys.exit("POST binding answered %s: %s" % (r.status_code, r.text[:500]))
    page = browse_to_acs(a, browser, requests.compat.urljoin(destination, r.headers["Location"]))
    return finish(a, sp, page, request_id)


def cmd_idp_initiated(a):
    sp = client(a)
    browser = requests.Session()
    # As a browser says it when the user clicks the tile on the IdP's own portal: the IdP
    # launches at once only then (from another site's link it asks first).
    browser.headers["Sec-Fetch-Site"] = "same-origin"
    page = browse_to_acs(a, browser, a.base + "/saml/init/" + a.app_id)
    return finish(a, sp, page, None)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["sp-initiated", "sp-initiated-post", "idp-initiated", "sp-initiated-mfa"])
    p.add_argument("--base", required=True)
    p.add_argument("--sp-entity-id", required=True)
    p.add_argument("--acs", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--app-id")
    p.add_argument("--totp-secret")
    p.add_argument("--totp-last-step", type=int)
    a = p.parse_args()
    commands = {
        "sp-initiated": cmd_sp_initiated,
        "sp-initiated-post": cmd_sp_initiated_post,
        "idp-initiated": cmd_idp_initiated,
        "sp-initiated-mfa": cmd_sp_initiated_mfa,
    }
    out = commands[a.cmd](a)
    json.dump(out, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
