//! Why a sealed body or a wrapped key could not be opened. Never carries plaintext
//! or key bytes.

use thiserror::Error;

use crate::scope::{Epoch, Scope};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpenError {
    #[error("malformed sealed data: {reason}")]
    Malformed { reason: &'static str },
    #[error("sealed with format version {0}, which this version of Tessera does not know")]
    UnknownVersion(u8),
    #[error("no key to read {scope} at epoch {epoch}: this device was not given it")]
    NoKey { scope: Scope, epoch: Epoch },
    #[error("the sealed bytes do not open with the key of {scope} at epoch {epoch}: altered, or sealed for another record or network")]
    Forged { scope: Scope, epoch: Epoch },
    #[error("the wrapped key does not open with this device's key: altered, or wrapped for another device")]
    NotForThisDevice,
}
