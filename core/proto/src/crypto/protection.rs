//! Sealing, signing and opening datagrams: the byte layout of `docs/security.md`.

use std::{
    borrow::Cow,
    collections::HashMap,
    net::Ipv6Addr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use ed25519_dalek::{Signature, Signer};
use parking_lot::Mutex;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::{
    DropReason,
    keys::{ChannelKey, Fingerprint, KeyId, PublicKey, SigningKey},
    token::{TOKEN_LEN, Token},
};
use crate::{
    error::{Error, ErrorKind},
    wire::{
        self, DecodeError, FINGERPRINT_LEN, FLAG_COVERED, FLAG_SEALED, FLAG_SIGNED, FLAG_TOKEN,
        FLAGS_FIELD, FRAGMENT_HEADER_LEN, HEADER_LEN, SIGNATURE_LEN, TYPE_FRAGMENT,
        manifest::{self, DIGEST_LEN, Digest, MAX_DIGESTS},
    },
};

/// Where the wire header holds the sender's node id and the sequence number (8 bytes each).
const SENDER_FIELD: usize = 8;
const SEQ_FIELD: usize = 16;

/// Bytes of the key id that follows the header of a sealed datagram.
pub const KEY_ID_LEN: usize = 4;
/// Bytes of the AEAD tag that ends the sealed part.
pub const TAG_LEN: usize = 16;
/// Bytes sealing adds to a datagram.
pub const SEAL_OVERHEAD: usize = KEY_ID_LEN + TAG_LEN;
/// Bytes signing adds to a datagram: the signer's fingerprint and the signature.
pub const SIGNATURE_OVERHEAD: usize = FINGERPRINT_LEN + SIGNATURE_LEN;

/// BLAKE3 key-derivation context of the per-channel seal key, from which each sender's
/// AES-256-GCM key is derived.
pub const SEAL_KEY_CONTEXT: &str = "sixcast 2026-12 channel seal key v2";
/// BLAKE3 key-derivation context of the key (from the channel's seal key) of the MACs on a
/// sealed reliable channel's NACKs and reports.
pub const CONTROL_MAC_CONTEXT: &str = "sixcast 2026-12 repair control mac v1";
/// Bytes of the MAC a sealed channel appends to its NACKs and reports.
pub const CONTROL_TAG_LEN: usize = 16;
/// Appended to the signed bytes (after the canonical group) so that a sixcast signature can
/// never be taken for a signature of anything else.
pub const SIGNATURE_DOMAIN: &[u8] = b"sixcast signed datagram v1";
/// Bytes [`Protection::seal_in_place`] appends for a moment past the signed datagram: the group
/// and [`SIGNATURE_DOMAIN`]. Within the spare room [`wire::Packer`]'s datagrams have.
pub const SIGNING_SCRATCH: usize = 16 + SIGNATURE_DOMAIN.len();
const _: () = assert!(SIGNING_SCRATCH <= wire::PACKER_SPARE);
/// Most datagrams one signature covers through a chain of manifests: half of what a receiver
/// holds by default ([`CoverLimits`](super::CoverLimits)), so that two senders signing at full
/// speed fit.
pub const MAX_CHAIN_LEN: usize = 2 * MAX_DIGESTS;

/// Why [`Protection::open`] refused a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The bytes are not a well-formed datagram (counted as malformed).
    Malformed(DecodeError),
    /// The datagram is well formed but fails the channel's protection.
    Dropped(DropReason),
}

impl Rejected {
    /// The stable name of the reason (a [`DecodeError::reason`] or a [`DropReason::name`]).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(err) => err.reason(),
            Self::Dropped(reason) => reason.name(),
        }
    }
}

/// A channel's keys: what it seals and signs its datagrams with, and what it accepts.
///
/// Without any key it sends and accepts plain datagrams. With channel keys it seals with the
/// send key and accepts only datagrams sealed with one of its keys. With trusted public keys or
/// trusted token issuers it accepts only datagrams signed by a trusted key, or by a key that
/// presents an unexpired [`Token`] of a trusted issuer for this channel. Keys are bound to the channel's canonical group
/// (the group original traffic is sent to), so the same key on two channels gives unrelated
/// ciphers, and relayed copies (sent to the relayed twin group) open like the originals.
#[derive(Debug, Clone)]
pub struct Protection {
    group: Ipv6Addr,
    /// The key of the channel's manifest digests ([`super::digest_key`]), derived once.
    digest_key: [u8; 32],
    send_key: Option<KeyId>,
    keys: Vec<SealKey>,
    signer: Option<SendSigner>,
    /// Presented in every signed datagram; its subject is the signer's key.
    token: Option<Token>,
    trusted: HashMap<Fingerprint, PublicKey>,
    issuers: HashMap<Fingerprint, PublicKey>,
}

/// How many senders' AES-256-GCM keys a channel key keeps ready: deriving one costs about as
/// much as sealing a full datagram, and most channels hear a few senders at a time.
pub(super) const RECENT_SENDERS: usize = 8;

struct SealKey {
    id: KeyId,
    /// The channel's seal key: the key of a BLAKE3 keyed hash that gives each sender its own
    /// AES-256-GCM key.
    root: Zeroizing<[u8; 32]>,
    /// The key of the MACs on repair control messages, derived from `root`.
    control: Zeroizing<[u8; 32]>,
    /// The keys of the senders seen last, newest first.
    recent: Mutex<Vec<(u64, Arc<LessSafeKey>)>>,
}

impl SealKey {
    fn new(id: KeyId, root: Zeroizing<[u8; 32]>) -> Self {
        Self {
            id,
            control: Zeroizing::new(blake3::derive_key(CONTROL_MAC_CONTEXT, root.as_ref())),
            root,
            recent: Mutex::new(Vec::with_capacity(RECENT_SENDERS)),
        }
    }

    /// The MAC of a repair control message under this key.
    fn control_tag(&self, message: &[u8]) -> [u8; CONTROL_TAG_LEN] {
        let mut tag = [0; CONTROL_TAG_LEN];
        tag.copy_from_slice(
            &blake3::keyed_hash(&self.control, message).as_bytes()[..CONTROL_TAG_LEN],
        );
        tag
    }

    /// The AES-256-GCM key of the sender whose datagram starts with `clear`.
    fn sender_cipher(&self, clear: &[u8]) -> Arc<LessSafeKey> {
        let mut sender = [0; 8];
        sender.copy_from_slice(&clear[SENDER_FIELD..SENDER_FIELD + 8]);
        let node = u64::from_be_bytes(sender);
        let mut recent = self.recent.lock();
        match recent.iter().position(|(known, _)| *known == node) {
            Some(0) => {}
            Some(index) => {
                let entry = recent.remove(index);
                recent.insert(0, entry);
            }
            None => {
                let key = Zeroizing::new(*blake3::keyed_hash(&self.root, &sender).as_bytes());
                // A 32-byte key is what AES-256 takes, so this cannot fail.
                let key =
                    UnboundKey::new(&AES_256_GCM, key.as_ref()).unwrap_or_else(|_| unreachable!());
                recent.truncate(RECENT_SENDERS - 1);
                recent.insert(0, (node, Arc::new(LessSafeKey::new(key))));
            }
        }
        Arc::clone(&recent[0].1)
    }
}

impl Clone for SealKey {
    fn clone(&self) -> Self {
        Self::new(self.id, self.root.clone())
    }
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct SendSigner {
    key: SigningKey,
    fingerprint: Fingerprint,
}

impl Protection {
    /// No keys yet, for the channel whose canonical group is `group`.
    pub fn new(group: Ipv6Addr) -> Self {
        Self {
            group,
            digest_key: super::digest_key(group),
            send_key: None,
            keys: Vec::new(),
            signer: None,
            token: None,
            trusted: HashMap::new(),
            issuers: HashMap::new(),
        }
    }

    /// Seals what is sent with `key` from now on, and accepts datagrams sealed with it.
    pub fn set_key(&mut self, key: &ChannelKey) {
        self.add_key(key);
        self.send_key = Some(key.id());
    }

    /// Accepts datagrams sealed with `key` too (during a rotation), replacing a key of the same
    /// id. From the first key on, datagrams that are not sealed are dropped.
    pub fn add_key(&mut self, key: &ChannelKey) {
        let mut material = [0; 32 + 16];
        material[..32].copy_from_slice(key.secret());
        material[32..].copy_from_slice(&self.group.octets());
        let root = Zeroizing::new(blake3::derive_key(SEAL_KEY_CONTEXT, &material));
        zeroize::Zeroize::zeroize(&mut material);
        let sealing = SealKey::new(key.id(), root);
        match self.keys.iter_mut().find(|known| known.id == key.id()) {
            Some(known) => *known = sealing,
            None => self.keys.push(sealing),
        }
    }

    /// Appends a channel key's MAC to a repair control message (a NACK or a report) that this
    /// node sends, so that senders act only on those of the channel's key holders: the send
    /// key's, or else the first key held (a member that only accepts keys still receives
    /// reliably). Without keys, nothing is appended.
    pub fn tag_control(&self, message: &mut Vec<u8>) {
        let send_key = self
            .send_key
            .and_then(|id| self.keys.iter().find(|key| key.id == id));
        let Some(key) = send_key.or(self.keys.first()) else {
            return;
        };
        let tag = key.control_tag(message);
        message.extend_from_slice(&tag);
    }

    /// A repair control message heard on the channel, its MAC checked against each key held
    /// and removed. Without keys (nothing sealed), the message as it is. With keys, one too
    /// short to carry a MAC is refused as `NotSealed`, and one whose last bytes are no key's
    /// MAC (a made-up one, or none) as `BadTag`.
    pub fn check_control<'a>(&self, message: &'a [u8]) -> Result<&'a [u8], DropReason> {
        if self.keys.is_empty() {
            return Ok(message);
        }
        let Some(split) = message.len().checked_sub(CONTROL_TAG_LEN) else {
            return Err(DropReason::NotSealed);
        };
        let (body, tag) = message.split_at(split);
        let Ok(tag) = <[u8; CONTROL_TAG_LEN]>::try_from(tag) else {
            return Err(DropReason::NotSealed);
        };
        // In constant time: a forger learns nothing from how long the comparison took.
        let genuine = self
            .keys
            .iter()
            .any(|key| wire::control::mac_matches(&key.control_tag(body), &tag));
        if genuine {
            Ok(body)
        } else {
            Err(DropReason::BadTag)
        }
    }

    /// Stops accepting datagrams sealed with key `id`; returns whether it was held. Removing the
    /// send key makes the channel send plain datagrams until [`set_key`](Self::set_key) again.
    pub fn remove_key(&mut self, id: KeyId) -> bool {
        if self.send_key == Some(id) {
            self.send_key = None;
        }
        let before = self.keys.len();
        self.keys.retain(|known| known.id != id);
        self.keys.len() != before
    }

    /// Signs what is sent with `key` from now on. A presented token for another key is dropped.
    pub fn sign_with(&mut self, key: SigningKey) {
        let fingerprint = key.public_key().fingerprint();
        if self
            .token
            .is_some_and(|token| token.subject().fingerprint() != fingerprint)
        {
            self.token = None;
        }
        self.signer = Some(SendSigner { key, fingerprint });
    }

    /// Presents `token` in every signed datagram from now on, so that receivers trusting its
    /// issuer accept the signing key until the token expires.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] unless the token is for the signing key set with
    /// [`sign_with`](Self::sign_with) and for this channel's group.
    pub fn present(&mut self, token: Token) -> crate::Result<()> {
        let invalid = |message: &str| Err(Error::new(ErrorKind::InvalidConfig, message));
        match &self.signer {
            None => return invalid("set a signing key before presenting a token"),
            Some(signer) if signer.fingerprint != token.subject().fingerprint() => {
                return invalid("the token is for another signing key");
            }
            Some(_) => {}
        }
        if token.group() != self.group {
            return invalid("the token is for another channel");
        }
        self.token = Some(token);
        Ok(())
    }

    /// Accepts datagrams signed by any key that presents an unexpired token of `issuer` for this
    /// channel. Like [`trust`](Self::trust), makes signatures required.
    pub fn trust_issuer(&mut self, issuer: PublicKey) {
        self.issuers.insert(issuer.fingerprint(), issuer);
    }

    /// Whether datagrams must be signed by a trusted key (a key or an issuer is trusted).
    pub fn requires_signatures(&self) -> bool {
        !self.trusted.is_empty() || !self.issuers.is_empty()
    }

    /// Accepts datagrams signed with `key`. From the first trusted key on, datagrams not signed
    /// by a trusted key are dropped.
    pub fn trust(&mut self, key: PublicKey) {
        self.trusted.insert(key.fingerprint(), key);
    }

    /// The canonical group the keys are bound to.
    pub fn group(&self) -> Ipv6Addr {
        self.group
    }

    /// Whether sending changes datagrams (a send key or a signing key is set).
    pub fn protects_sending(&self) -> bool {
        self.send_key.is_some() || self.signer.is_some()
    }

    /// Whether receiving checks anything (a channel key or a trusted key is held).
    pub fn protects_receiving(&self) -> bool {
        !self.keys.is_empty() || self.requires_signatures()
    }

    /// Bytes [`seal`](Self::seal) adds to each datagram.
    pub fn overhead(&self) -> usize {
        let sealing = if self.send_key.is_some() {
            SEAL_OVERHEAD
        } else {
            0
        };
        let signing = match (&self.signer, &self.token) {
            (None, _) => 0,
            (Some(_), None) => SIGNATURE_OVERHEAD,
            (Some(_), Some(_)) => SIGNATURE_OVERHEAD + TOKEN_LEN,
        };
        sealing + signing
    }

    /// Seals and/or signs one plain datagram (as a [`wire::Packer`] makes it), as configured;
    /// returns it unchanged without a send or signing key.
    ///
    /// Fails with [`ErrorKind::Malformed`] if `plain` is not a plain datagram.
    pub fn seal(&self, plain: &[u8]) -> crate::Result<Vec<u8>> {
        let mut datagram = Vec::with_capacity(plain.len() + self.overhead() + SIGNING_SCRATCH);
        datagram.extend_from_slice(plain);
        self.seal_in_place(&mut datagram)?;
        Ok(datagram)
    }

    /// [`seal`](Self::seal) without a copy: `datagram` becomes the sealed and/or signed one.
    /// A datagram with room for [`overhead`](Self::overhead) and [`SIGNING_SCRATCH`] more
    /// bytes (as [`wire::Packer`] makes them) is never reallocated.
    ///
    /// Fails with [`ErrorKind::Malformed`], changing nothing, if `datagram` is not a plain
    /// datagram.
    pub fn seal_in_place(&self, datagram: &mut Vec<u8>) -> crate::Result<()> {
        self.protect(datagram, true)
    }

    /// Seals and/or signs `datagrams` in place, as [`seal_in_place`](Self::seal_in_place) does
    /// each, except that a signing channel signs runs of them together: the datagrams of a run
    /// are sealed but not signed, flagged COVERED, and followed by `copies` copies of a
    /// MANIFEST ([`wire::manifest`]) listing their [`digest`](super::digest)s. A run is as
    /// long as a manifest of `datagram_size` bytes has room for (at most [`MAX_DIGESTS`]).
    ///
    /// Manifests are chained: all but the last of a chain are COVERED too, and the last, the
    /// only one signed, lists their digests before its own run's, so that one signature
    /// covers up to [`chain_len`](Self::chain_len) datagrams. A datagram alone is signed
    /// itself. Manifests are numbered from `numbers`.
    ///
    /// Fails like `seal_in_place`; the datagrams are then partly sealed.
    pub fn seal_batch(
        &self,
        datagrams: &mut Vec<Vec<u8>>,
        datagram_size: usize,
        copies: usize,
        numbers: &AtomicU64,
    ) -> crate::Result<()> {
        let run_len = self.run_len(datagram_size);
        if run_len < 2 || datagrams.len() < 2 {
            return datagrams
                .iter_mut()
                .try_for_each(|datagram| self.seal_in_place(datagram));
        }
        let sender = wire::decode_header(&datagrams[0])?.sender;
        let most_chained = chained_manifests(run_len);
        let plain = std::mem::take(datagrams);
        datagrams.reserve(plain.len() + copies * plain.len().div_ceil(run_len / 2));
        // Digests of the chain's covered manifests, which its signed manifest lists first.
        let mut chained = Vec::with_capacity(most_chained);
        let mut digests = Vec::with_capacity(run_len);
        let mut rest = plain.into_iter();
        while rest.len() > 0 || !chained.is_empty() {
            let room = run_len - chained.len();
            let signs = rest.len() <= room || chained.len() == most_chained;
            let run = if signs { room } else { run_len };
            if signs && chained.is_empty() && rest.len() == 1 {
                if let Some(mut single) = rest.next() {
                    self.seal_in_place(&mut single)?;
                    datagrams.push(single);
                }
                continue;
            }
            digests.clear();
            if signs {
                digests.append(&mut chained);
            }
            for mut datagram in rest.by_ref().take(run) {
                self.protect(&mut datagram, false)?;
                digests.push(self.digest(&datagram));
                datagrams.push(datagram);
            }
            let mut manifest = Vec::with_capacity(datagram_size + SIGNING_SCRATCH);
            let number = numbers.fetch_add(1, Ordering::Relaxed);
            manifest::encode(&mut manifest, sender, number, &digests);
            self.protect(&mut manifest, signs)?;
            if !signs {
                chained.push(self.digest(&manifest));
            }
            for _ in 1..copies {
                datagrams.push(manifest.clone());
            }
            datagrams.push(manifest);
        }
        Ok(())
    }

    /// How many datagrams one signature covers at most, through a chain of manifests of
    /// `datagram_size` bytes (see [`seal_batch`](Self::seal_batch)): a signing channel
    /// gathers that many before a batch leaves early. 0 without a signing key.
    pub fn chain_len(&self, datagram_size: usize) -> usize {
        let run_len = self.run_len(datagram_size);
        let chained = chained_manifests(run_len);
        (chained + 1) * run_len - chained
    }

    /// The [`digest`](super::digest) of `datagram` on this channel, as a manifest lists it.
    pub fn digest(&self, datagram: &[u8]) -> Digest {
        super::cover::keyed_digest(&self.digest_key, datagram)
    }

    /// How many datagrams [`seal_batch`](Self::seal_batch) covers with one manifest of
    /// `datagram_size` bytes: 0 without a signing key.
    pub fn run_len(&self, datagram_size: usize) -> usize {
        if self.signer.is_none() {
            return 0;
        }
        let room = datagram_size.saturating_sub(HEADER_LEN + self.overhead()) / DIGEST_LEN;
        room.min(MAX_DIGESTS)
    }

    /// Seals (with a send key) and signs (with a signing key) `datagram` in place; with a signing
    /// key and `sign` false it is flagged COVERED instead, for a manifest to vouch for it.
    fn protect(&self, datagram: &mut Vec<u8>, sign: bool) -> crate::Result<()> {
        let header = wire::decode_header(datagram)?;
        if header.flags != 0 {
            return Err(DecodeError::Protected.into());
        }
        let fields_end = HEADER_LEN + fragment_fields_len(header.kind);
        if datagram.len() < fields_end {
            return Err(DecodeError::Truncated.into());
        }
        let send_key = self.send_key.and_then(|id| self.key(id));
        datagram.reserve(self.overhead() + SIGNING_SCRATCH);
        let signer = self.signer.as_ref().filter(|_| sign);
        let covered = self.signer.is_some() && !sign;
        datagram[FLAGS_FIELD] = send_key.map_or(0, |_| FLAG_SEALED)
            | signer.map_or(0, |_| FLAG_SIGNED)
            | signer.and(self.token).map_or(0, |_| FLAG_TOKEN)
            | if covered { FLAG_COVERED } else { 0 };
        if let Some(key) = send_key {
            // The key id goes between the header and the fragment fields.
            datagram.splice(HEADER_LEN..HEADER_LEN, key.id.0.to_be_bytes());
            let clear_len = fields_end + KEY_ID_LEN;
            let aad = AssociatedData::new(&datagram[..clear_len], self.group);
            let nonce = nonce(&datagram[..clear_len], header.kind);
            let cipher = key.sender_cipher(datagram);
            let sealed = cipher.seal_in_place_separate_tag(
                nonce,
                Aad::from(aad.as_bytes()),
                &mut datagram[clear_len..],
            );
            let Ok(tag) = sealed else {
                // Undo the flags and the key id: the datagram is as it was.
                datagram.drain(HEADER_LEN..HEADER_LEN + KEY_ID_LEN);
                datagram[FLAGS_FIELD] = 0;
                return Err(Error::new(
                    ErrorKind::MessageTooLarge,
                    "the datagram is too long to seal",
                ));
            };
            datagram.extend_from_slice(tag.as_ref());
        }
        if let Some(signer) = signer {
            if let Some(token) = &self.token {
                datagram.extend_from_slice(&token.to_bytes());
            }
            datagram.extend_from_slice(&signer.fingerprint.0);
            let signed_len = datagram.len();
            // The signed bytes are the datagram so far, the group and the domain; appending them
            // in place avoids a copy, and the signature then takes their place.
            datagram.extend_from_slice(&self.group.octets());
            datagram.extend_from_slice(SIGNATURE_DOMAIN);
            let signature = signer.key.dalek().sign(datagram);
            datagram.truncate(signed_len);
            datagram.extend_from_slice(&signature.to_bytes());
        }
        Ok(())
    }

    /// Checks one received datagram against the channel's keys and returns the plain datagram
    /// inside, for [`wire::decode`]. `now` is the wall-clock time tokens are checked against.
    ///
    /// Checks, in this order (cheap ones first, so that traffic without the key costs little):
    /// the header, the signature trailer's presence (`not_signed` when signatures are required),
    /// the key (`no_key`), the AEAD tag (`bad_tag`), sealing when a key is held (`not_sealed`),
    /// the signer (`untrusted_signer`), a presented token (`bad_signature`, `expired`) and the
    /// signature (`bad_signature`). A signature on a channel that requires none is stripped
    /// unchecked, and so is the COVERED flag; where signatures are required a COVERED datagram
    /// is `not_signed` here: it can pass only with its manifest
    /// ([`open_covered`](Self::open_covered)).
    pub fn open<'a>(&self, datagram: &'a [u8], now: SystemTime) -> Result<Cow<'a, [u8]>, Rejected> {
        self.open_owned(datagram, now, false)
    }

    /// [`open`](Self::open) into `scratch` (its contents replaced) where the plain datagram is
    /// not the received one, so that a receive path opening datagram after datagram reuses one
    /// allocation.
    pub fn open_into<'a>(
        &self,
        datagram: &'a [u8],
        now: SystemTime,
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], Rejected> {
        Ok(if self.open_as(datagram, now, false, scratch)? {
            scratch
        } else {
            datagram
        })
    }

    /// Whether `datagram` is flagged COVERED on a channel that requires signatures: it must wait
    /// for a verified manifest ([`super::Covers`]) after [`open_covered`](Self::open_covered).
    pub fn needs_cover(&self, datagram: &[u8]) -> bool {
        self.requires_signatures()
            && datagram.len() >= HEADER_LEN
            && datagram[FLAGS_FIELD] & FLAG_COVERED != 0
    }

    /// [`open`](Self::open), except that a COVERED datagram passes without a signature: the
    /// caller holds what it returns until a verified manifest lists the datagram's
    /// [`digest`](super::digest).
    pub fn open_covered<'a>(
        &self,
        datagram: &'a [u8],
        now: SystemTime,
    ) -> Result<Cow<'a, [u8]>, Rejected> {
        self.open_owned(datagram, now, true)
    }

    /// [`open_as`](Self::open_as) into a buffer of its own, or borrowing `datagram` where it is
    /// its own plain datagram.
    fn open_owned<'a>(
        &self,
        datagram: &'a [u8],
        now: SystemTime,
        covered_passes: bool,
    ) -> Result<Cow<'a, [u8]>, Rejected> {
        let mut plain = Vec::new();
        Ok(
            if self.open_as(datagram, now, covered_passes, &mut plain)? {
                Cow::Owned(plain)
            } else {
                Cow::Borrowed(datagram)
            },
        )
    }

    /// Checks `datagram` as [`open`](Self::open) describes; returns whether the plain datagram
    /// was written to `plain` (true) or is `datagram` itself.
    fn open_as(
        &self,
        datagram: &[u8],
        now: SystemTime,
        covered_passes: bool,
        plain: &mut Vec<u8>,
    ) -> Result<bool, Rejected> {
        let header = wire::decode_header(datagram).map_err(Rejected::Malformed)?;
        let covered = header.flags & FLAG_COVERED != 0;
        let signed = header.flags & FLAG_SIGNED != 0;
        let sealed = header.flags & FLAG_SEALED != 0;
        let token_len = if header.flags & FLAG_TOKEN != 0 {
            TOKEN_LEN
        } else {
            0
        };
        let mut end = datagram.len();
        if signed {
            end = end
                .checked_sub(SIGNATURE_OVERHEAD + token_len)
                .filter(|&end| end >= HEADER_LEN)
                .ok_or(Rejected::Malformed(DecodeError::Truncated))?;
        } else if self.requires_signatures() && !(covered && covered_passes) {
            return Err(Rejected::Dropped(DropReason::NotSigned));
        }
        let copied = if sealed {
            self.unseal(&datagram[..end], header.kind, plain)?;
            true
        } else if !self.keys.is_empty() {
            return Err(Rejected::Dropped(DropReason::NotSealed));
        } else if signed || covered {
            plain.clear();
            plain.extend_from_slice(&datagram[..end]);
            plain[FLAGS_FIELD] = 0;
            true
        } else {
            false
        };
        if signed && self.requires_signatures() {
            self.verify(datagram, end, token_len, now)?;
        }
        Ok(copied)
    }

    fn key(&self, id: KeyId) -> Option<&SealKey> {
        self.keys.iter().find(|key| key.id == id)
    }

    /// Opens `sealed` into `plain` (its contents replaced).
    fn unseal(&self, sealed: &[u8], kind: u8, plain: &mut Vec<u8>) -> Result<(), Rejected> {
        let clear_len = HEADER_LEN + KEY_ID_LEN + fragment_fields_len(kind);
        let truncated = Rejected::Malformed(DecodeError::Truncated);
        if sealed.len() < clear_len + TAG_LEN {
            return Err(truncated);
        }
        let id_bytes = sealed[HEADER_LEN..HEADER_LEN + KEY_ID_LEN]
            .try_into()
            .map_err(|_| truncated)?;
        let key = self
            .key(KeyId(u32::from_be_bytes(id_bytes)))
            .ok_or(Rejected::Dropped(DropReason::NoKey))?;
        let aad = AssociatedData::new(&sealed[..clear_len], self.group);
        let nonce = nonce(&sealed[..clear_len], kind);
        // The plain datagram is built around the ciphertext and its tag, opened in place, and
        // the tag cut off.
        plain.clear();
        plain.reserve(sealed.len() - KEY_ID_LEN);
        plain.extend_from_slice(&sealed[..HEADER_LEN]);
        plain[FLAGS_FIELD] = 0;
        plain.extend_from_slice(&sealed[HEADER_LEN + KEY_ID_LEN..clear_len]);
        let body_start = plain.len();
        plain.extend_from_slice(&sealed[clear_len..]);
        key.sender_cipher(sealed)
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut plain[body_start..])
            .map_err(|_| Rejected::Dropped(DropReason::BadTag))?;
        plain.truncate(plain.len() - TAG_LEN);
        Ok(())
    }

    /// Checks the trailer that starts at `trailer_start`: a token of `token_len` bytes (0 or
    /// [`TOKEN_LEN`]), the fingerprint and the signature.
    fn verify(
        &self,
        datagram: &[u8],
        trailer_start: usize,
        token_len: usize,
        now: SystemTime,
    ) -> Result<(), Rejected> {
        let fingerprint_start = trailer_start + token_len;
        let signature_start = fingerprint_start + FINGERPRINT_LEN;
        let mut fingerprint = [0; FINGERPRINT_LEN];
        fingerprint.copy_from_slice(&datagram[fingerprint_start..signature_start]);
        let fingerprint = Fingerprint(fingerprint);
        let bad = Rejected::Dropped(DropReason::BadSignature);
        let subject;
        let signer = match self.trusted.get(&fingerprint) {
            Some(trusted) => trusted,
            None if token_len > 0 && !self.issuers.is_empty() => {
                let token = Token::from_bytes(&datagram[trailer_start..fingerprint_start])
                    .map_err(|_| bad)?;
                let issuer = self
                    .issuers
                    .get(&token.issuer())
                    .ok_or(Rejected::Dropped(DropReason::UntrustedSigner))?;
                let genuine = token.group() == self.group
                    && token.subject().fingerprint() == fingerprint
                    && token.is_signed_by(issuer);
                if !genuine {
                    return Err(bad);
                }
                if !token.is_valid_at(now) {
                    return Err(Rejected::Dropped(DropReason::Expired));
                }
                subject = token.subject();
                &subject
            }
            None => return Err(Rejected::Dropped(DropReason::UntrustedSigner)),
        };
        let signature = Signature::from_slice(&datagram[signature_start..]).map_err(|_| bad)?;
        let mut signed = Vec::with_capacity(signature_start + 16 + SIGNATURE_DOMAIN.len());
        signed.extend_from_slice(&datagram[..signature_start]);
        signed.extend_from_slice(&self.group.octets());
        signed.extend_from_slice(SIGNATURE_DOMAIN);
        signer
            .dalek()
            .verify_strict(&signed, &signature)
            .map_err(|_| bad)
    }
}

/// The AEAD's associated data: the clear prefix of a sealed datagram (header, key id, fragment
/// fields), then the group. On the stack: it is made for every datagram sealed or opened.
struct AssociatedData {
    bytes: [u8; HEADER_LEN + KEY_ID_LEN + FRAGMENT_HEADER_LEN + 16],
    len: usize,
}

impl AssociatedData {
    fn new(clear: &[u8], group: Ipv6Addr) -> Self {
        let mut bytes = [0; HEADER_LEN + KEY_ID_LEN + FRAGMENT_HEADER_LEN + 16];
        let len = clear.len() + 16;
        bytes[..clear.len()].copy_from_slice(clear);
        bytes[clear.len()..len].copy_from_slice(&group.octets());
        Self { bytes, len }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The fragment fields stay in clear after the key id: the nonce needs the fragment index.
/// How many COVERED manifests one signed manifest lists, for runs of `run_len` datagrams: as
/// many as keep a chain within [`MAX_CHAIN_LEN`], and at most half a run.
fn chained_manifests(run_len: usize) -> usize {
    (MAX_CHAIN_LEN / run_len.max(1))
        .saturating_sub(1)
        .min(run_len / 2)
}

fn fragment_fields_len(kind: u8) -> usize {
    if kind == TYPE_FRAGMENT {
        FRAGMENT_HEADER_LEN
    } else {
        0
    }
}

/// seq (8) ‖ type (1) ‖ fragment index (2, 0 for a batch) ‖ zero (1), from the clear prefix of
/// a sealed datagram. Unique per sender key: each of a sender's sequence numbers starts exactly
/// one batch or one fragmented message, whose fragments differ by index.
fn nonce(clear: &[u8], kind: u8) -> Nonce {
    let mut nonce = [0; NONCE_LEN];
    nonce[..8].copy_from_slice(&clear[SEQ_FIELD..SEQ_FIELD + 8]);
    nonce[8] = kind;
    if kind == TYPE_FRAGMENT {
        // The index follows total_len and offset in the fragment fields.
        let index = HEADER_LEN + KEY_ID_LEN + 8;
        nonce[9..11].copy_from_slice(&clear[index..index + 2]);
    }
    Nonce::assume_unique_for_key(nonce)
}
