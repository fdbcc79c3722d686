//! Writing our own EntityDescriptor, in schema order, optionally signed.

use latchkey_xmlsec::crypto::{Certificate, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions};

use super::{
    ContactPerson, Endpoint, EntityDescriptor, IdpSsoDescriptor, IndexedEndpoint, KeyDescriptor,
    KeyUse, Organization, SAML2_PROTOCOL, SpSsoDescriptor,
};
use crate::error::Result;
use crate::ns::{DSIG, METADATA};
use crate::time::{format_datetime, format_duration};
use crate::xml_writer::XmlWriter;

impl EntityDescriptor {
    /// Serializes the descriptor (no XML declaration).
    pub fn to_xml(&self) -> Result<String> {
        let mut w = XmlWriter::new();
        w.start("md:EntityDescriptor")
            .attr("xmlns:md", METADATA)
            .attr("xmlns:ds", DSIG)
            .attr("entityID", &self.entity_id)
            .opt_attr("ID", self.id.as_deref())
            .opt_attr(
                "validUntil",
                self.valid_until.map(format_datetime).as_deref(),
            )
            .opt_attr(
                "cacheDuration",
                self.cache_duration.map(format_duration).as_deref(),
            );
        if let Some(idp) = &self.idp {
            write_idp(&mut w, idp);
        }
        if let Some(sp) = &self.sp {
            write_sp(&mut w, sp);
        }
        if let Some(o) = &self.organization {
            write_organization(&mut w, o);
        }
        for c in &self.contacts {
            write_contact(&mut w, c);
        }
        w.end();
        w.finish()
    }

    /// Serializes and signs the descriptor (enveloped, first child, as the metadata
    /// schema places `ds:Signature`). An ID is generated if the descriptor has none.
    /// `certificate` goes into KeyInfo for the reader's information.
    // SignOptions is non_exhaustive: struct-update syntax is not available here.
    #[allow(clippy::field_reassign_with_default)]
    pub fn to_signed_xml(
        &self,
        key: &SigningKey,
        certificate: Option<&Certificate>,
    ) -> Result<String> {
        let mut me = self.clone();
        let id = match &me.id {
            Some(id) => id.clone(),
            None => {
                let id = crate::ids::new_id()?;
                me.id = Some(id.clone());
                id
            }
        };
        let mut options = SignOptions::default();
        options.insert_after = None;
        Ok(dsig::sign(&me.to_xml()?, &id, key, certificate, &options)?)
    }
}

fn write_keys(w: &mut XmlWriter, keys: &[KeyDescriptor]) {
    for k in keys {
        w.start("md:KeyDescriptor");
        match k.key_use {
            Some(KeyUse::Signing) => {
                w.attr("use", "signing");
            }
            Some(KeyUse::Encryption) => {
                w.attr("use", "encryption");
            }
            None => {}
        }
        w.start("ds:KeyInfo").start("ds:X509Data");
        for c in &k.certificates {
            w.text_element("ds:X509Certificate", &c.to_base64());
        }
        w.end().end();
        // Schema order: KeyInfo, then the EncryptionMethods.
        for m in &k.encryption_methods {
            w.start("md:EncryptionMethod").attr("Algorithm", m).end();
        }
        w.end();
    }
}

fn write_endpoints(w: &mut XmlWriter, name: &'static str, endpoints: &[Endpoint]) {
    for e in endpoints {
        w.start(name)
            .attr("Binding", &e.binding)
            .attr("Location", &e.location)
            .opt_attr("ResponseLocation", e.response_location.as_deref())
            .end();
    }
}

fn write_name_id_formats(w: &mut XmlWriter, formats: &[String]) {
    for f in formats {
        w.text_element("md:NameIDFormat", f);
    }
}

fn write_idp(w: &mut XmlWriter, idp: &IdpSsoDescriptor) {
    w.start("md:IDPSSODescriptor")
        .attr("protocolSupportEnumeration", SAML2_PROTOCOL);
    if idp.want_authn_requests_signed {
        w.attr("WantAuthnRequestsSigned", "true");
    }
    write_keys(w, &idp.keys);
    write_endpoints(w, "md:SingleLogoutService", &idp.slo_services);
    write_name_id_formats(w, &idp.name_id_formats);
    write_endpoints(w, "md:SingleSignOnService", &idp.sso_services);
    w.end();
}

fn write_sp(w: &mut XmlWriter, sp: &SpSsoDescriptor) {
    w.start("md:SPSSODescriptor")
        .attr("protocolSupportEnumeration", SAML2_PROTOCOL)
        .attr("AuthnRequestsSigned", bool_str(sp.authn_requests_signed))
        .attr("WantAssertionsSigned", bool_str(sp.want_assertions_signed));
    write_keys(w, &sp.keys);
    write_endpoints(w, "md:SingleLogoutService", &sp.slo_services);
    write_name_id_formats(w, &sp.name_id_formats);
    for e in &sp.assertion_consumer_services {
        write_indexed(w, "md:AssertionConsumerService", e);
    }
    w.end();
}

fn write_indexed(w: &mut XmlWriter, name: &'static str, e: &IndexedEndpoint) {
    w.start(name)
        .attr("Binding", &e.binding)
        .attr("Location", &e.location)
        .attr("index", &e.index.to_string())
        .opt_attr("isDefault", e.is_default.map(bool_str))
        .end();
}

fn write_organization(w: &mut XmlWriter, o: &Organization) {
    w.start("md:Organization");
    for (name, value) in [
        ("md:OrganizationName", &o.name),
        ("md:OrganizationDisplayName", &o.display_name),
        ("md:OrganizationURL", &o.url),
    ] {
        w.start(name).attr("xml:lang", &o.lang).text(value).end();
    }
    w.end();
}

fn write_contact(w: &mut XmlWriter, c: &ContactPerson) {
    w.start("md:ContactPerson")
        .attr("contactType", &c.contact_type);
    if let Some(v) = &c.company {
        w.text_element("md:Company", v);
    }
    if let Some(v) = &c.given_name {
        w.text_element("md:GivenName", v);
    }
    if let Some(v) = &c.surname {
        w.text_element("md:SurName", v);
    }
    for v in &c.email_addresses {
        w.text_element("md:EmailAddress", v);
    }
    for v in &c.telephone_numbers {
        w.text_element("md:TelephoneNumber", v);
    }
    w.end();
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}
