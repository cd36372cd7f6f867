//! Per-author hash chains and the one verification entry point.
//!
//! An envelope is accepted only when its author may sign that seq (certificate, no
//! revocation at or before it), its signature and present bodies verify, and it
//! extends the author's chain by exactly one (seq follows, prev matches). What to do
//! with an envelope at a seq we already hold (duplicate, or a fork) is the caller's
//! decision, because only the caller can look up the envelope it holds there.

use crate::envelope::Envelope;
use crate::error::VerifyError;
use crate::ids::{EnvelopeId, Seq};
use crate::trust::{DeviceCertificate, TrustState};

/// The last envelope held of one author.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Head {
    pub seq: Seq,
    pub id: EnvelopeId,
}

/// Where a verified envelope sits in its author's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Extends the chain by one: seq is head + 1 and prev is the head's id.
    Next,
    /// At or below the head: a duplicate if its id equals the one held at that seq,
    /// otherwise proof of a fork (the author signed two different histories).
    AtOrBelowHead,
}

/// Checks where `envelope` sits relative to `head` (the author's last held envelope).
pub fn check_link(head: Option<Head>, envelope: &Envelope) -> Result<Placement, VerifyError> {
    let device = envelope.author();
    let seq = envelope.seq();
    let (expected, prev) = match head {
        None => (Seq::FIRST, EnvelopeId::default()),
        Some(h) => match h.seq.next() {
            Some(next) => (next, h.id),
            None => return Ok(Placement::AtOrBelowHead),
        },
    };
    if seq < expected {
        return Ok(Placement::AtOrBelowHead);
    }
    if seq > expected {
        return Err(VerifyError::SeqGap { device, expected, got: seq });
    }
    if envelope.prev() != prev {
        let prev_seq = Seq(seq.0 - 1);
        return Err(VerifyError::WrongPrev { device, seq, prev_seq });
    }
    Ok(Placement::Next)
}

/// Full verification of one envelope against the trust state and its author's head:
/// authority, signature, bodies, chain. Cheap checks first, the signature last but one.
pub fn verify_envelope<'t>(
    trust: &'t TrustState,
    head: Option<Head>,
    envelope: &Envelope,
) -> Result<(Placement, &'t DeviceCertificate), VerifyError> {
    let certificate = trust.authorize(&envelope.author(), envelope.seq())?;
    let placement = check_link(head, envelope)?;
    trust.verify_envelope_signature(envelope)?;
    Ok((placement, certificate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SecretKey, Seq};
    use crate::testkit::{test_doc, TestNetwork};
    use crate::trust::{DeviceRevocation, PartnerRevocation, TrustStatement};

    fn head(env: &Envelope) -> Option<Head> {
        Some(Head { seq: env.seq(), id: env.id() })
    }

    #[test]
    fn a_chain_verifies_link_by_link() {
        let mut net = TestNetwork::new(1, 2, 2);
        let trust = net.trust();
        let network = net.network;
        let mut last: Option<Head> = None;
        for n in 0..5 {
            let env = net.devices[3].next_simple(&network, n, 40);
            let (placement, cert) = verify_envelope(&trust, last, &env).unwrap();
            assert_eq!(placement, Placement::Next);
            assert_eq!(cert.partner, net.devices[3].partner);
            last = head(&env);
        }
        assert_eq!(last.unwrap().seq, Seq(5));
    }

    #[test]
    fn gap_in_seq_is_refused() {
        let mut net = TestNetwork::new(1, 1, 1);
        let network = net.network;
        let first = net.devices[0].next_simple(&network, 1, 10);
        let _second = net.devices[0].next_simple(&network, 2, 10);
        let third = net.devices[0].next_simple(&network, 3, 10);
        let err = verify_envelope(&net.trust(), head(&first), &third).unwrap_err();
        assert_eq!(err, VerifyError::SeqGap { device: net.devices[0].id, expected: Seq(2), got: Seq(3) });
        assert!(err.to_string().contains("gap"));
        let err = verify_envelope(&net.trust(), None, &third).unwrap_err();
        assert!(matches!(err, VerifyError::SeqGap { expected: Seq(1), .. }));
    }

    #[test]
    fn wrong_prev_is_refused_as_a_second_history() {
        let mut net = TestNetwork::new(1, 1, 1);
        let network = net.network;
        let first = net.devices[0].next_simple(&network, 1, 10);
        // The same device signs another seq 1, then continues from it.
        net.devices[0].head = None;
        let other_first = net.devices[0].next_simple(&network, 99, 10);
        let second_on_other = net.devices[0].next_simple(&network, 2, 10);
        assert_ne!(first.id(), other_first.id());
        let err = verify_envelope(&net.trust(), head(&first), &second_on_other).unwrap_err();
        assert_eq!(err, VerifyError::WrongPrev { device: net.devices[0].id, seq: Seq(2), prev_seq: Seq(1) });
        // A seq already held is placed at or below the head; the caller compares ids.
        let (placement, _) = verify_envelope(&net.trust(), head(&first), &other_first).unwrap();
        assert_eq!(placement, Placement::AtOrBelowHead);
    }

    #[test]
    fn bad_signature_is_refused() {
        let mut net = TestNetwork::new(1, 1, 1);
        let network = net.network;
        let env = net.devices[0].next_simple(&network, 1, 10);
        let mut bytes = env.encode();
        bytes[HEADER_SIG_AT] ^= 1;
        let forged = Envelope::decode(&bytes).unwrap();
        let err = verify_envelope(&net.trust(), None, &forged).unwrap_err();
        assert_eq!(err, VerifyError::BadSignature { device: net.devices[0].id, seq: Seq(1) });
        assert!(err.to_string().contains("altered or forged"));
    }
    const HEADER_SIG_AT: usize = crate::envelope::HEADER_FIXED_BYTES + crate::envelope::CHANGE_REF_BYTES + 5;

    #[test]
    fn unknown_author_is_refused() {
        let net = TestNetwork::new(1, 1, 1);
        let network = net.network;
        let mut stranger = TestNetwork::new(2, 1, 1);
        let env = stranger.devices[0].next(&network, &[(test_doc(2, 1), b"x".as_slice())]);
        let err = verify_envelope(&net.trust(), None, &env).unwrap_err();
        assert_eq!(err, VerifyError::UnknownAuthor { device: stranger.devices[0].id, seq: Seq(1) });
        assert!(err.to_string().contains("not certified"));
    }

    #[test]
    fn revoked_device_is_refused_after_its_cut_off_only() {
        let mut net = TestNetwork::new(1, 1, 1);
        let network = net.network;
        let envs: Vec<Envelope> = (0..4).map(|n| net.devices[0].next_simple(&network, n, 10)).collect();
        let device = net.devices[0].id;
        let revocation = net.sign_as_partner(
            0,
            TrustStatement::RevokeDevice(DeviceRevocation {
                issuer: net.partner_keys[0].public(),
                device,
                last_valid: Seq(2),
                reason: "laptop stolen".into(),
            }),
        );
        let mut trust = net.trust();
        trust.add(revocation).unwrap();
        verify_envelope(&trust, None, &envs[0]).unwrap();
        verify_envelope(&trust, head(&envs[0]), &envs[1]).unwrap();
        let err = verify_envelope(&trust, head(&envs[1]), &envs[2]).unwrap_err();
        assert_eq!(err, VerifyError::Revoked { device, seq: Seq(3), last_valid: Seq(2) });
    }

    #[test]
    fn revoked_partner_keeps_only_listed_cut_offs() {
        let mut net = TestNetwork::new(1, 1, 2);
        let network = net.network;
        let a = net.devices[0].next_simple(&network, 1, 10);
        let a2 = net.devices[0].next_simple(&network, 2, 10);
        let b = net.devices[1].next_simple(&network, 1, 10);
        let partner = net.devices[0].partner;
        let revocation = net.sign_as_network(TrustStatement::RevokePartner(PartnerRevocation {
            partner,
            last_valid: vec![(net.devices[0].id, Seq(1))],
            reason: "partnership ended".into(),
        }));
        let mut trust = net.trust();
        trust.add(revocation).unwrap();
        verify_envelope(&trust, None, &a).unwrap();
        let err = verify_envelope(&trust, head(&a), &a2).unwrap_err();
        assert!(matches!(err, VerifyError::PartnerRevoked { last_valid: Seq(1), .. }), "{err}");
        let err = verify_envelope(&trust, None, &b).unwrap_err();
        assert!(matches!(err, VerifyError::PartnerRevoked { last_valid: Seq(0), .. }), "{err}");
    }

    #[test]
    fn commitment_mismatch_is_refused() {
        let mut net = TestNetwork::new(1, 1, 1);
        let network = net.network;
        let env = net.devices[0].next_simple(&network, 1, 10);
        let mut bytes = env.encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let altered = Envelope::decode(&bytes).unwrap();
        let err = verify_envelope(&net.trust(), None, &altered).unwrap_err();
        assert_eq!(err, VerifyError::CommitmentMismatch { device: net.devices[0].id, seq: Seq(1), index: 0 });
    }

    #[test]
    fn an_uncertified_key_signing_as_a_certified_author_fails() {
        let mut net = TestNetwork::new(1, 1, 1);
        let network = net.network;
        let genuine = net.devices[0].next_simple(&network, 1, 10);
        // Re-sign the same header with another key but keep the certified author.
        let forger = SecretKey::from_seed([9; 32]);
        let mut bytes = genuine.encode();
        let sig_at = crate::envelope::HEADER_FIXED_BYTES + crate::envelope::CHANGE_REF_BYTES;
        let fake = forger.sign(b"anything");
        bytes[sig_at..sig_at + 64].copy_from_slice(&fake.0);
        let forged = Envelope::decode(&bytes).unwrap();
        assert!(matches!(
            verify_envelope(&net.trust(), None, &forged),
            Err(VerifyError::BadSignature { .. })
        ));
    }
}
