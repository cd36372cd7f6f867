//! Names instead of ids: the people, devices and sites a page mentions, read once per
//! page. A person whose details this hub may not read is "registered by ORG", an
//! erased one "erased person": never a raw id.

use std::collections::HashMap;

use anyhow::Result;
use tessera_log::DocId;
use tessera_records::kind::RecordKind;
use tessera_records::model::{Attendee, Device, Record, RecordRef};

use crate::node::Node;
use crate::ui::Ui;

/// The name a page shows for an attendee.
pub fn person_name(node: &Node, attendee: &Attendee, ui: &Ui) -> String {
    if attendee.is_erased() {
        return ui.t("erased person", "persona cancellata").to_string();
    }
    if attendee.is_reserved() {
        let who = crate::commands::registering_partner(node, attendee)
            .unwrap_or_else(|| ui.t("another organisation", "un altro ente").to_string());
        return format!("{} {who}", ui.t("person registered by", "persona registrata da"));
    }
    format!("{} {}", attendee.given_name, attendee.family_name)
}

/// Everyone and everything a listing names, read once.
#[derive(Debug, Default)]
pub struct Names {
    people: HashMap<DocId, String>,
    devices: HashMap<DocId, String>,
    sites: HashMap<DocId, String>,
    unknown: String,
}

impl Names {
    pub fn load(node: &Node, ui: &Ui) -> Result<Names> {
        let mut names = Names {
            unknown: ui.t("(not readable here yet)", "(non ancora leggibile qui)").into(),
            ..Names::default()
        };
        for (id, record) in node.docs().records(RecordKind::Attendee)? {
            if let Record::Attendee(a) = record {
                names.people.insert(id, person_name(node, &a, ui));
            }
        }
        for (id, record) in node.docs().records(RecordKind::Device)? {
            if let Record::Device(d) = record {
                names.devices.insert(id, device_label(&d));
            }
        }
        for (id, record) in node.docs().records(RecordKind::Site)? {
            if let Record::Site(s) = record {
                names.sites.insert(id, s.name);
            }
        }
        Ok(names)
    }

    pub fn person(&self, id: &RecordRef) -> &str {
        self.people.get(&id.0).unwrap_or(&self.unknown)
    }
    pub fn device(&self, id: &RecordRef) -> &str {
        self.devices.get(&id.0).unwrap_or(&self.unknown)
    }
    pub fn site(&self, id: &RecordRef) -> &str {
        self.sites.get(&id.0).unwrap_or(&self.unknown)
    }
    /// Every site, sorted by name (for filters).
    pub fn sites(&self) -> Vec<(DocId, String)> {
        let mut all: Vec<(DocId, String)> = self.sites.iter().map(|(id, n)| (*id, n.clone())).collect();
        all.sort_by(|a, b| a.1.cmp(&b.1));
        all
    }
}

/// `TAB-0042` and the model when there is one.
pub fn device_label(device: &Device) -> String {
    if device.model.trim().is_empty() {
        device.asset_tag.clone()
    } else {
        format!("{} ({})", device.asset_tag, device.model)
    }
}

/// The record `id` (full hex, from a URL) if it is of `kind`.
pub fn parse_id(text: &str, kind: RecordKind) -> Option<DocId> {
    tessera_records::kind::parse_doc_id(text).filter(|id| tessera_records::kind::kind_of(id) == Some(kind))
}
