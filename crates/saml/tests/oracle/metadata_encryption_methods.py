"""pysaml2 and python3-saml as oracles for md:EncryptionMethod in SP metadata.

Usage:
  metadata_encryption_methods.py read METADATA.xml
      pysaml2 parses the document with its own metadata model and prints JSON
      {"keys": [{"use": USE or null, "algorithms": [URI, ...]}, ...]} for the first
      SPSSODescriptor's KeyDescriptors, and python3-saml validates it against the SAML
      metadata 2.0 schema it bundles ("schema_valid": true, or the error as a string), which
      checks that every EncryptionMethod sits after its KeyInfo.
  metadata_encryption_methods.py write ENTITY_ID ACS CERT_BASE64 ALGORITHM...
      pysaml2 builds an SP EntityDescriptor (its own writer) whose encryption KeyDescriptor
      lists ALGORITHM... in order; an rsa-oaep one carries a ds:DigestMethod child, as
      Shibboleth SP writes it. Prints the XML.
Exit status 3 if pysaml2 or python3-saml cannot be imported.
"""

import json
import sys
import warnings

warnings.filterwarnings("ignore")

try:
    import saml2
    from saml2 import md, xmldsig
    from onelogin.saml2.xml_utils import OneLogin_Saml2_XML
except ImportError as exc:  # pragma: no cover - reported by the Rust test
    sys.stderr.write(f"pysaml2 or python3-saml is not importable: {exc}\n")
    sys.exit(3)

POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def read(path):
    text = open(path, "rb").read()
    entity = md.entity_descriptor_from_string(text)
    sp = entity.spsso_descriptor[0]
    keys = [
        {
            "use": k.use,
            "algorithms": [m.algorithm for m in k.encryption_method],
        }
        for k in sp.key_descriptor
    ]
    checked = OneLogin_Saml2_XML.validate_xml(text, "saml-schema-metadata-2.0.xsd")
    schema = True if not isinstance(checked, str) else checked
    print(json.dumps({"keys": keys, "schema_valid": schema}))


def write(entity_id, acs, cert, algorithms):
    methods = []
    for uri in algorithms:
        method = md.EncryptionMethod(algorithm=uri)
        if uri.endswith("#rsa-oaep"):
            digest = xmldsig.DigestMethod(algorithm=SHA256)
            method.extension_elements = [saml2.element_to_extension_element(digest)]
        methods.append(method)
    key_info = xmldsig.KeyInfo(
        x509_data=[xmldsig.X509Data(x509_certificate=xmldsig.X509Certificate(text=cert))]
    )
    key = md.KeyDescriptor(use="encryption", key_info=key_info, encryption_method=methods)
    sp = md.SPSSODescriptor(
        protocol_support_enumeration=PROTOCOL,
        key_descriptor=[key],
        assertion_consumer_service=[
            md.AssertionConsumerService(binding=POST, location=acs, index="0")
        ],
    )
    entity = md.EntityDescriptor(entity_id=entity_id, spsso_descriptor=[sp])
    print(str(entity))


def main(argv):
    if argv[:1] == ["read"] and len(argv) == 2:
        read(argv[1])
    elif argv[:1] == ["write"] and len(argv) >= 4:
        write(argv[1], argv[2], argv[3], argv[4:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
