//! The domain of Tessera: sites, attendees, devices, loans (comodato d'uso) and
//! sessions, each kept as one automerge document; the rules a record must follow; the
//! conflicts a merge can leave (a device lent twice, a person registered at two hubs,
//! a help desk booked twice) and the records that resolve them; aggregate reports.
//!
//! Pure: no files, no sockets, no clock, no randomness. `today` and times are passed
//! in, and so are the random bytes of new ids. Bytes of changes and documents are
//! untrusted input: they are checked and refused with an error, never a panic. Errors
//! name fields and record ids, never a person's data.
//!
//! Map: [`kind`] (record kinds and ids, short ids), [`vocab`] (the closed sets of words
//! and their English and Italian labels), [`model`] (the records), [`doc`]
//! ([`RecordDoc`]: records as automerge documents and changes), [`mod@validate`],
//! [`conflicts`], [`mod@report`], [`text`] (folding names for comparison).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod conflicts;
pub mod doc;
pub mod kind;
pub mod model;
pub mod report;
pub mod text;
pub mod validate;
pub mod vocab;

pub use conflicts::{
    close_loan, detect, mark_not_duplicate, merge_attendees, move_appointment, repoint_references, Conflict,
};
pub use doc::{actor_for, change_by, RecordDoc, RecordError};
pub use kind::{kind_of, new_doc_id, parse_doc_id, parse_id_prefix, short_id, IdError, IdPrefix, RecordKind};
pub use model::{
    attendee_of_personal, erased_stub, format_date, format_date_time, join_attendee, match_key, parse_date,
    parse_date_time, personal_doc_id, split_attendee, Attendee, Consent, Device, Erased, Guardian, Loan,
    Participant, PersonalDetails, Record, RecordRef, Session, Site,
};
pub use report::{report, CsvStyle, GroupBy, Report, ReportQuery, ReportRow};
pub use validate::{validate, validate_new_loan, ValidationError};
pub use vocab::{
    AttendeeRole, Audience, ConsentBy, DeviceCondition, DeviceKind, DeviceOrigin, DeviceStatus, Lang,
    ParseWordError, SessionKind, SessionMode, SiteKind, Topic,
};
