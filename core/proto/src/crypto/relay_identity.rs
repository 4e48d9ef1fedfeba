//! Relay identities: a relay signs its SIGNED_CHALLENGE with its identity key, and a node that
//! pinned relay keys accepts only a challenge signed by one of them, or by a key that an issuer
//! it trusts vouched for (a capability [`Token`] for the relay group, the voucher). See
//! `docs/security.md` §2.3. The fields and their byte layout belong to the control codec
//! ([`Control::signed_fields`]); this module only signs and verifies them.

use std::{
    fmt,
    net::{Ipv6Addr, SocketAddrV6},
    time::SystemTime,
};

use ed25519_dalek::{Signature, Signer};

use super::{
    keys::{PublicKey, SigningKey},
    token::Token,
};
use crate::wire::control::{self, Control, Mac};

/// Whom a node takes as a relay.
#[derive(Debug, Clone, Copy)]
pub struct RelayTrust<'a> {
    /// Pinned relay keys.
    pub keys: &'a [PublicKey],
    /// Trusted voucher issuers.
    pub issuers: &'a [PublicKey],
    /// The relay group of the node's scope: what a voucher must be for.
    pub group: Ipv6Addr,
    /// The node's clock, for voucher expiry.
    pub now: SystemTime,
}

/// Why a node refused a relay's answer to its SIGNED_HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayRefusal {
    /// A plain CHALLENGE (or anything but a SIGNED_CHALLENGE): the relay proved no identity.
    Unsigned,
    /// Signed by a key that is not pinned, without a voucher of a trusted issuer.
    UnpinnedKey,
    /// The voucher is malformed, not signed by the issuer it names, not for the relay group, or
    /// for another key.
    BadVoucher,
    /// The voucher has expired.
    ExpiredVoucher,
    /// The signature does not verify under the pinned key it names.
    BadSignature,
    /// The observed address is not one this node could have sent from.
    ImplausibleAddress,
}

impl fmt::Display for RelayRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unsigned => "it answered without signing (it has no identity key)",
            Self::UnpinnedKey => "its identity key is neither pinned nor vouched for",
            Self::BadVoucher => {
                "its voucher is not a trusted issuer's for its key and the relay group"
            }
            Self::ExpiredVoucher => "its voucher has expired",
            Self::BadSignature => "its signature does not verify",
            Self::ImplausibleAddress => "it names an address this node did not send from",
        })
    }
}

/// A SIGNED_CHALLENGE answering `nonce` from `observed`, signed by `identity`, presenting
/// `voucher`.
pub fn sign_challenge<'a>(
    (identity, voucher): (&SigningKey, Option<&'a Token>),
    (nonce, mac): (u64, Mac),
    refresh_secs: u16,
    limit: bool,
    observed: SocketAddrV6,
) -> Control<'a> {
    let mut challenge = Control::SignedChallenge(control::SignedChallenge {
        nonce,
        mac,
        refresh_secs,
        limit,
        observed: SocketAddrV6::new(*observed.ip(), observed.port(), 0, 0),
        relay_key: identity.public_key().fingerprint(),
        voucher: voucher.map(Token::as_bytes),
        signature: [0; super::SIGNATURE_LEN],
    });
    if let (Some(fields), Control::SignedChallenge(control::SignedChallenge { signature, .. })) =
        (challenge.signed_fields(), &mut challenge)
    {
        *signature = identity.dalek().sign(&fields).to_bytes();
    }
    challenge
}

/// Checks a relay's answer to a SIGNED_HELLO whose nonce it echoes: it must be a
/// SIGNED_CHALLENGE by a key of `trust` (pinned, or vouched for by a trusted issuer with an
/// unexpired voucher for the relay group), with a signature that verifies (strictly) and an
/// observed address that `plausible` accepts. Returns the relay's key.
pub fn verify_challenge(
    answer: &Control<'_>,
    trust: &RelayTrust<'_>,
    plausible: impl FnOnce(SocketAddrV6) -> bool,
) -> Result<PublicKey, RelayRefusal> {
    let Control::SignedChallenge(control::SignedChallenge {
        observed,
        relay_key,
        voucher,
        signature,
        ..
    }) = answer
    else {
        return Err(RelayRefusal::Unsigned);
    };
    let pinned = trust
        .keys
        .iter()
        .find(|key| key.fingerprint() == *relay_key);
    let key = match (pinned, voucher) {
        (Some(key), _) => *key,
        (None, Some(voucher)) => vouched_key(*voucher, *relay_key, trust)?,
        (None, None) => return Err(RelayRefusal::UnpinnedKey),
    };
    let fields = answer.signed_fields().ok_or(RelayRefusal::Unsigned)?;
    key.dalek()
        .verify_strict(&fields, &Signature::from_bytes(signature))
        .map_err(|_| RelayRefusal::BadSignature)?;
    if !plausible(*observed) {
        return Err(RelayRefusal::ImplausibleAddress);
    }
    Ok(key)
}

/// The relay key a voucher names, if a trusted issuer signed it for `relay_key` on the relay
/// group and it has not expired. Costs a signature verification only for a trusted issuer's.
fn vouched_key(
    voucher: &[u8],
    relay_key: super::Fingerprint,
    trust: &RelayTrust<'_>,
) -> Result<PublicKey, RelayRefusal> {
    let token = Token::from_bytes(voucher).map_err(|_| RelayRefusal::BadVoucher)?;
    let issuer = trust
        .issuers
        .iter()
        .find(|issuer| issuer.fingerprint() == token.issuer())
        .ok_or(RelayRefusal::UnpinnedKey)?;
    if token.subject().fingerprint() != relay_key
        || token.group() != trust.group
        || !token.is_signed_by(issuer)
    {
        return Err(RelayRefusal::BadVoucher);
    }
    if !token.is_valid_at(trust.now) {
        return Err(RelayRefusal::ExpiredVoucher);
    }
    Ok(token.subject())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::wire::control;

    const GROUP: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0x6c, 0x1);

    fn node() -> SocketAddrV6 {
        SocketAddrV6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7), 40_000, 0, 0)
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_seed([seed; 32])
    }

    fn challenge<'a>(identity: &SigningKey, voucher: Option<&'a Token>) -> Control<'a> {
        sign_challenge(
            (identity, voucher),
            (7, [0xab; control::MAC_LEN]),
            10,
            false,
            node(),
        )
    }

    fn trust<'a>(keys: &'a [PublicKey], issuers: &'a [PublicKey]) -> RelayTrust<'a> {
        RelayTrust {
            keys,
            issuers,
            group: GROUP,
            now: SystemTime::now(),
        }
    }

    fn voucher(issuer: &SigningKey, relay: &SigningKey, group: Ipv6Addr, valid: i64) -> Token {
        let now = SystemTime::now();
        let not_after = if valid >= 0 {
            now + Duration::from_secs(valid.unsigned_abs())
        } else {
            now - Duration::from_secs(valid.unsigned_abs())
        };
        Token::issue(issuer, relay.public_key(), group, not_after)
    }

    #[test]
    fn a_pinned_relays_challenge_verifies_and_round_trips() {
        let identity = key(1);
        let pinned = [key(2).public_key(), identity.public_key()];
        let answer = challenge(&identity, None);
        let bytes = answer.to_vec().unwrap();
        let decoded = control::decode(&bytes).unwrap();
        assert_eq!(decoded, answer);
        assert_eq!(
            verify_challenge(&decoded, &trust(&pinned, &[]), |seen| seen == node()),
            Ok(identity.public_key())
        );
    }

    #[test]
    fn unsigned_unpinned_forged_and_misaddressed_answers_are_refused() {
        let identity = key(1);
        let pinned = [identity.public_key()];
        let trust = trust(&pinned, &[]);
        let anywhere = |_| true;
        let plain = Control::Challenge(control::Challenge {
            nonce: 7,
            mac: [0xab; control::MAC_LEN],
            refresh_secs: 10,
            limit: false,
        });
        assert_eq!(
            verify_challenge(&plain, &trust, anywhere),
            Err(RelayRefusal::Unsigned)
        );
        assert_eq!(
            verify_challenge(&challenge(&key(3), None), &trust, anywhere),
            Err(RelayRefusal::UnpinnedKey)
        );
        // A rogue relay naming the pinned key's fingerprint but signing with its own key.
        let mut impostor = challenge(&key(3), None);
        if let Control::SignedChallenge(control::SignedChallenge { relay_key, .. }) = &mut impostor
        {
            *relay_key = identity.public_key().fingerprint();
        }
        assert_eq!(
            verify_challenge(&impostor, &trust, anywhere),
            Err(RelayRefusal::BadSignature)
        );
        // Every signed field is covered: change any byte of the body but the signature.
        let bytes = challenge(&identity, None).to_vec().unwrap();
        for position in control::HEADER_LEN..bytes.len() - 64 {
            let mut changed = bytes.clone();
            changed[position] ^= 0x01;
            let changed = control::decode(&changed).unwrap();
            assert!(
                verify_challenge(&changed, &trust, anywhere).is_err(),
                "byte {position}"
            );
        }
        let mut limited = bytes;
        limited[4] = control::FLAG_LIMIT;
        let limited = control::decode(&limited).unwrap();
        assert_eq!(
            verify_challenge(&limited, &trust, anywhere),
            Err(RelayRefusal::BadSignature)
        );
        assert_eq!(
            verify_challenge(&challenge(&identity, None), &trust, |_| false),
            Err(RelayRefusal::ImplausibleAddress)
        );
    }

    #[test]
    fn a_trusted_issuers_unexpired_voucher_for_the_relay_group_admits_the_relay() {
        let (issuer, relay) = (key(9), key(4));
        let issuers = [issuer.public_key()];
        let trust = trust(&[], &issuers);
        let anywhere = |_| true;
        let vouched = voucher(&issuer, &relay, GROUP, 60);
        assert_eq!(
            verify_challenge(&challenge(&relay, Some(&vouched)), &trust, anywhere),
            Ok(relay.public_key())
        );
        // The voucher is signed by the relay too: replacing it breaks the signature.
        let later = voucher(&issuer, &relay, GROUP, 120);
        let mut swapped = challenge(&relay, Some(&vouched));
        if let Control::SignedChallenge(control::SignedChallenge {
            voucher: carried, ..
        }) = &mut swapped
        {
            *carried = Some(later.as_bytes());
        }
        assert_eq!(
            verify_challenge(&swapped, &trust, anywhere),
            Err(RelayRefusal::BadSignature)
        );
        let foreign = voucher(&key(8), &relay, GROUP, 60);
        let for_a_channel = voucher(
            &issuer,
            &relay,
            Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 1),
            60,
        );
        let expired = voucher(&issuer, &relay, GROUP, -10);
        let refused = [
            // No voucher, or one of an issuer nobody trusts.
            (challenge(&relay, None), RelayRefusal::UnpinnedKey),
            (challenge(&relay, Some(&foreign)), RelayRefusal::UnpinnedKey),
            // The trusted issuer's voucher for a channel, for another relay, or expired.
            (
                challenge(&relay, Some(&for_a_channel)),
                RelayRefusal::BadVoucher,
            ),
            (challenge(&key(5), Some(&vouched)), RelayRefusal::BadVoucher),
            (
                challenge(&relay, Some(&expired)),
                RelayRefusal::ExpiredVoucher,
            ),
        ];
        for (answer, why) in refused {
            assert_eq!(verify_challenge(&answer, &trust, anywhere), Err(why));
        }
        // A forged issuer signature.
        let mut forged = vouched.to_bytes();
        forged[100] ^= 1;
        let forged = Token::from_bytes(&forged).unwrap();
        assert_eq!(
            verify_challenge(&challenge(&relay, Some(&forged)), &trust, anywhere),
            Err(RelayRefusal::BadVoucher)
        );
    }
}
