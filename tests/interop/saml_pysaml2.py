#!/usr/bin/env python3
"""pysaml2 as an interop oracle for latchkey-saml (crates/saml/tests/interop.rs).

Each subcommand prints one JSON object on stdout:

  authn-request  pysaml2 as an SP loads OUR IdP metadata and makes a signed
                 HTTP-Redirect AuthnRequest (RSA-SHA256): {"request_id", "location"};
                 with --post, an enveloped-signed one for HTTP-POST: {"request_id", "xml"}.
  metadata       pysaml2 loads OUR metadata file and reports what it understood.
  idp-response   pysaml2 as an IdP loads OUR SP metadata and answers a request with a
                 signed Response: {"xml"}. With --encrypt-assertion the (signed) assertion
                 is encrypted for the SP's encryption certificate, taken from the SP
                 metadata as pysaml2 does, or from --encrypt-cert; --data-cipher picks
                 the content cipher (default: pysaml2's own template, tripledes-cbc).
  sp-accept      pysaml2 as an SP loads OUR IdP metadata and checks OUR Response (file,
                 XML): {"name_id", "name_id_format", "issuer", "session_index", "ava"}.

Run with the oracle venv (LATCHKEY_PYTHON); xmlsec1 must be on PATH (pysaml2 signs with it).
"""

import argparse
import functools
import json
import shutil
import sys
import warnings

warnings.filterwarnings("ignore")

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT  # noqa: E402
from saml2.client import Saml2Client  # noqa: E402
from saml2.config import IdPConfig, SPConfig  # noqa: E402
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID  # noqa: E402
from saml2.saml import NAME_FORMAT_URI  # noqa: E402
from saml2.server import Server  # noqa: E402
from saml2 import entity as saml2_entity  # noqa: E402
from saml2 import sigver  # noqa: E402
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256  # noqa: E402

PASSWORD_PROTECTED_TRANSPORT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


def xmlsec_binary():
    path = shutil.which("xmlsec1")
    if not path:
        sys.exit("xmlsec1 not found on PATH (pysaml2 needs it to sign)")
    return path


def sp_client(a, metadata_file):
    conf = {
        "entityid": a.sp_entity_id,
        "key_file": a.key,
        "cert_file": a.cert,
        "xmlsec_binary": xmlsec_binary(),
        "service": {
            "sp": {
                "endpoints": {"assertion_consumer_service": [(a.acs, BINDING_HTTP_POST)]},
                "authn_requests_signed": True,
                "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            }
        },
        "metadata": {"local": [metadata_file]},
    }
    return Saml2Client(config=SPConfig().load(conf))


def cmd_authn_request(a):
    client = sp_client(a, a.idp_metadata)
    if a.post:
        destination = client.metadata.single_sign_on_service(a.idp_entity_id, BINDING_HTTP_POST)[0]["location"]
        req_id, req = client.create_authn_request(
            destination,
            sign=True,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
            binding=BINDING_HTTP_POST,
        )
        return {"request_id": req_id, "xml": str(req)}
    req_id, info = client.prepare_for_authenticate(
        entityid=a.idp_entity_id,
        relay_state=a.relay_state,
        binding=BINDING_HTTP_REDIRECT,
        sign=True,
        sigalg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    location = dict(info["headers"])["Location"]
    return {"request_id": req_id, "location": location}


def cmd_metadata(a):
    # Load the file as an SP would (IdP metadata) and as an IdP would (SP metadata).
    conf = {
        "entityid": "urn:latchkey:interop:probe",
        "xmlsec_binary": xmlsec_binary(),
        "service": {"sp": {"endpoints": {"assertion_consumer_service": [("https://probe/acs", BINDING_HTTP_POST)]}}},
        "metadata": {"local": [a.file]},
    }
    md = Saml2Client(config=SPConfig().load(conf)).metadata
    out = {}
    for entity_id in md.keys():
        entry = {"sso": [], "acs": [], "slo": [], "signing_certs": 0, "name_id_formats": []}
        try:
            for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
                for ep in md.single_sign_on_service(entity_id, binding):
                    entry["sso"].append([binding, ep["location"]])
        except Exception:  # no IdP role
            pass
        try:
            for ep in md.assertion_consumer_service(entity_id, BINDING_HTTP_POST):
                entry["acs"].append([ep["location"], int(ep["index"]), ep.get("is_default")])
        except Exception:  # no SP role
            pass
        for typ in ("idpsso", "spsso"):
            try:
                entry["signing_certs"] += len(md.certs(entity_id, typ, use="signing"))
                for ep in md.single_logout_service(entity_id, BINDING_HTTP_REDIRECT, typ):
                    entry["slo"].append(ep["location"])
            except Exception:
                pass
        for typ in ("idpsso_descriptor", "spsso_descriptor"):
            for desc in md[entity_id].get(typ, []):
                entry["name_id_formats"] += [f["text"] for f in desc.get("name_id_format", [])]
                for flag in ("want_authn_requests_signed", "authn_requests_signed", "want_assertions_signed"):
                    if flag in desc:
                        entry[flag] = desc[flag]
        out[entity_id] = entry
    return out


# Content ciphers for --data-cipher: the EncryptedData template's algorithm and the
# matching xmlsec1 --session-key. pysaml2's create_authn_response offers no choice: its
# template (sigver.pre_encryption_part) and its xmlsec1 call default to 3DES, so any
# other cipher is had by overriding exactly those two defaults; the encryption itself
# is still pysaml2's, done by xmlsec1.
DATA_CIPHERS = {
    "aes128-cbc": ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "aes-128"),
    "aes256-cbc": ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "aes-256"),
    "aes128-gcm": ("http://www.w3.org/2009/xmlenc11#aes128-gcm", "aes-128"),
    "aes256-gcm": ("http://www.w3.org/2009/xmlenc11#aes256-gcm", "aes-256"),
}


def use_data_cipher(idp, name):
    algorithm, session_key = DATA_CIPHERS[name]
    saml2_entity.pre_encryption_part = functools.partial(sigver.pre_encryption_part, msg_enc=algorithm)
    encrypt = idp.sec.encrypt_assertion

    def encrypt_with(statement, enc_key, template, key_type=None, node_xpath=None):
        return encrypt(statement, enc_key, template, key_type=session_key, node_xpath=node_xpath)

    idp.sec.encrypt_assertion = encrypt_with


def cert_body(path):
    """The base64 body of a PEM certificate, as pysaml2 takes encrypt_cert_assertion."""
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("-----")]
    return "".join(lines)


def cmd_idp_response(a):
    conf = {
        "entityid": a.idp_entity_id,
        "key_file": a.key,
        "cert_file": a.cert,
        "xmlsec_binary": xmlsec_binary(),
        "service": {
            "idp": {
                "endpoints": {"single_sign_on_service": [(a.sso, BINDING_HTTP_REDIRECT)]},
                "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_URI}},
                "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            }
        },
        "metadata": {"local": [a.sp_metadata]},
    }
    idp = Server(config=IdPConfig().load(conf))
    if a.encrypt_assertion and a.data_cipher != "pysaml2-default":
        use_data_cipher(idp, a.data_cipher)
    resp = idp.create_authn_response(
        identity={"mail": ["alice@example.org"], "eduPersonAffiliation": ["staff", "member"]},
        in_response_to=a.request_id,
        destination=a.acs,
        sp_entity_id=a.sp_entity_id,
        name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, sp_name_qualifier=a.sp_entity_id, text="alice-pairwise-1"),
        authn={"class_ref": PASSWORD_PROTECTED_TRANSPORT},
        sign_response=a.sign_response,
        sign_assertion=a.sign_assertion,
        encrypt_assertion=a.encrypt_assertion,
        encrypt_cert_assertion=cert_body(a.encrypt_cert) if a.encrypt_cert else None,
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    xml = str(resp)
    if a.encrypt_assertion and "EncryptedAssertion" not in xml:
        # pysaml2 silently skips encryption when it finds no certificate.
        sys.exit("pysaml2 did not encrypt the assertion (no encryption certificate?)")
    return {"xml": xml}


def cmd_sp_accept(a):
    import base64

    conf = {
        "entityid": a.sp_entity_id,
        "xmlsec_binary": xmlsec_binary(),
        "service": {
            "sp": {
                "endpoints": {"assertion_consumer_service": [(a.acs, BINDING_HTTP_POST)]},
                "want_response_signed": a.want_response_signed,
                "want_assertions_signed": a.want_assertions_signed,
                "allow_unsolicited": False,
            }
        },
        "metadata": {"local": [a.idp_metadata]},
    }
    client = Saml2Client(config=SPConfig().load(conf))
    with open(a.response, "rb") as f:
        encoded = base64.b64encode(f.read()).decode()
    resp = client.parse_authn_request_response(encoded, BINDING_HTTP_POST, outstanding={a.request_id: "/"})
    if resp is None:
        sys.exit("pysaml2 returned no response")
    name_id = resp.name_id
    info = resp.session_info()
    return {
        "issuer": resp.issuer(),
        "name_id": name_id.text,
        "name_id_format": name_id.format,
        "session_index": info.get("session_index"),
        "ava": resp.ava,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("authn-request")
    r.add_argument("--idp-metadata", required=True)
    r.add_argument("--idp-entity-id", required=True)
    r.add_argument("--sp-entity-id", required=True)
    r.add_argument("--acs", required=True)
    r.add_argument("--key", required=True)
    r.add_argument("--cert", required=True)
    r.add_argument("--relay-state", default="")
    r.add_argument("--post", action="store_true")

    m = sub.add_parser("metadata")
    m.add_argument("file")

    i = sub.add_parser("idp-response")
    i.add_argument("--sp-metadata", required=True)
    i.add_argument("--sp-entity-id", required=True)
    i.add_argument("--idp-entity-id", required=True)
    i.add_argument("--sso", required=True)
    i.add_argument("--acs", required=True)
    i.add_argument("--request-id", required=True)
    i.add_argument("--key", required=True)
    i.add_argument("--cert", required=True)
    i.add_argument("--sign-response", action="store_true")
    i.add_argument("--sign-assertion", action="store_true")
    i.add_argument("--encrypt-assertion", action="store_true")
    i.add_argument("--encrypt-cert", help="PEM certificate to encrypt for (default: from the SP metadata)")
    i.add_argument("--data-cipher", choices=["pysaml2-default", *DATA_CIPHERS], default="pysaml2-default")

    v = sub.add_parser("sp-accept")
    v.add_argument("--idp-metadata", required=True)
    v.add_argument("--sp-entity-id", required=True)
    v.add_argument("--acs", required=True)
    v.add_argument("--request-id", required=True)
    v.add_argument("--response", required=True)
    v.add_argument("--want-response-signed", action="store_true")
    v.add_argument("--want-assertions-signed", action="store_true")

    a = p.parse_args()
    handler = {
        "authn-request": cmd_authn_request,
        "metadata": cmd_metadata,
        "idp-response": cmd_idp_response,
        "sp-accept": cmd_sp_accept,
    }[a.cmd]
    json.dump(handler(a), sys.stdout)


if __name__ == "__main__":
    main()
