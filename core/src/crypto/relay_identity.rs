//! Relay identities: a relay signs its SIGNED_CHALLENGE with its identity key, and a node that
//! pinned relay keys accepts only a challenge signed by one of them (`docs/security.md` §2.3).
//! The fields and their byte layout belong to the control codec
//! ([`Control::signed_fields`]); this module only signs and verifies them.

use std::{fmt, net::SocketAddrV6};

use ed25519_dalek::{Signature, Signer};

use super::keys::{PublicKey, SigningKey};
use crate::wire::control::{Control, Mac};

/// Why a node refused a relay's answer to its SIGNED_HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelayRefusal {
    /// A plain CHALLENGE (or anything but a SIGNED_CHALLENGE): the relay proved no identity.
    Unsigned,
    /// Signed by a key that is not pinned.
    UnpinnedKey,
    /// The signature does not verify under the pinned key it names.
    BadSignature,
    /// The observed address is not one this node could have sent from.
    ImplausibleAddress,
}

impl fmt::Display for RelayRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unsigned => "it answered without signing (it has no identity key)",
            Self::UnpinnedKey => "its identity key is not pinned",
            Self::BadSignature => "its signature does not verify",
            Self::ImplausibleAddress => "it names an address this node did not send from",
        })
    }
}

/// A SIGNED_CHALLENGE answering `nonce` from `observed`, signed by `identity`.
pub(crate) fn sign_challenge(
    identity: &SigningKey,
    (nonce, mac): (u64, Mac),
    refresh_secs: u16,
    limit: bool,
    observed: SocketAddrV6,
) -> Control<'static> {
    let mut challenge = Control::SignedChallenge {
        nonce,
        mac,
        refresh_secs,
        limit,
        observed: SocketAddrV6::new(*observed.ip(), observed.port(), 0, 0),
        relay_key: identity.public_key().fingerprint(),
        signature: [0; super::SIGNATURE_LEN],
    };
    if let (Some(fields), Control::SignedChallenge { signature, .. }) =
        (challenge.signed_fields(), &mut challenge)
    {
        *signature = identity.dalek().sign(&fields).to_bytes();
    }
    challenge
}

/// Checks a relay's answer to a SIGNED_HELLO whose nonce it echoes: it must be a
/// SIGNED_CHALLENGE by one of `pinned`, with a signature that verifies (strictly) and an
/// observed address that `plausible` accepts. Returns the relay's key.
pub(crate) fn verify_challenge(
    answer: &Control<'_>,
    pinned: &[PublicKey],
    plausible: impl FnOnce(SocketAddrV6) -> bool,
) -> Result<PublicKey, RelayRefusal> {
    let Control::SignedChallenge {
        observed,
        relay_key,
        signature,
        ..
    } = answer
    else {
        return Err(RelayRefusal::Unsigned);
    };
    let key = pinned
        .iter()
        .find(|key| key.fingerprint() == *relay_key)
        .ok_or(RelayRefusal::UnpinnedKey)?;
    let fields = answer.signed_fields().ok_or(RelayRefusal::Unsigned)?;
    key.dalek()
        .verify_strict(&fields, &Signature::from_bytes(signature))
        .map_err(|_| RelayRefusal::BadSignature)?;
    if !plausible(*observed) {
        return Err(RelayRefusal::ImplausibleAddress);
    }
    Ok(*key)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;
    use crate::wire::control;

    fn node() -> SocketAddrV6 {
        SocketAddrV6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7), 40_000, 0, 0)
    }

    fn relay_key(seed: u8) -> SigningKey {
        SigningKey::from_seed([seed; 32])
    }

    fn challenge(identity: &SigningKey) -> Control<'static> {
        sign_challenge(identity, (7, [0xab; control::MAC_LEN]), 10, false, node())
    }

    #[test]
    fn a_pinned_relays_challenge_verifies_and_round_trips() {
        let identity = relay_key(1);
        let pinned = [relay_key(2).public_key(), identity.public_key()];
        let answer = challenge(&identity);
        let bytes = answer.to_vec().unwrap();
        let decoded = control::decode(&bytes).unwrap();
        assert_eq!(decoded, answer);
        assert_eq!(
            verify_challenge(&decoded, &pinned, |seen| seen == node()),
            Ok(identity.public_key())
        );
    }

    #[test]
    fn unsigned_unpinned_forged_and_misaddressed_answers_are_refused() {
        let identity = relay_key(1);
        let pinned = [identity.public_key()];
        let anywhere = |_| true;
        let plain = Control::Challenge {
            nonce: 7,
            mac: [0xab; control::MAC_LEN],
            refresh_secs: 10,
            limit: false,
        };
        assert_eq!(
            verify_challenge(&plain, &pinned, anywhere),
            Err(RelayRefusal::Unsigned)
        );
        assert_eq!(
            verify_challenge(&challenge(&relay_key(3)), &pinned, anywhere),
            Err(RelayRefusal::UnpinnedKey)
        );
        assert_eq!(
            verify_challenge(&challenge(&identity), &[], anywhere),
            Err(RelayRefusal::UnpinnedKey)
        );
        // A rogue relay naming the pinned key's fingerprint but signing with its own key.
        let mut impostor = challenge(&relay_key(3));
        if let Control::SignedChallenge { relay_key, .. } = &mut impostor {
            *relay_key = identity.public_key().fingerprint();
        }
        assert_eq!(
            verify_challenge(&impostor, &pinned, anywhere),
            Err(RelayRefusal::BadSignature)
        );
        // Every signed field is covered: change any byte of the body but the signature.
        let bytes = challenge(&identity).to_vec().unwrap();
        for position in control::HEADER_LEN..bytes.len() - 64 {
            let mut changed = bytes.clone();
            changed[position] ^= 0x01;
            let changed = control::decode(&changed).unwrap();
            assert!(
                verify_challenge(&changed, &pinned, anywhere).is_err(),
                "byte {position}"
            );
        }
        let mut limited = bytes;
        limited[4] = control::FLAG_LIMIT;
        let limited = control::decode(&limited).unwrap();
        assert_eq!(
            verify_challenge(&limited, &pinned, anywhere),
            Err(RelayRefusal::BadSignature)
        );
        assert_eq!(
            verify_challenge(&challenge(&identity), &pinned, |_| false),
            Err(RelayRefusal::ImplausibleAddress)
        );
    }
}
