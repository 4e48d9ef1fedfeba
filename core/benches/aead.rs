//! The channel cipher, AES-256-GCM from ring (with the CPU's AES and carry-less multiplication
//! instructions where it has them) under a key derived for each datagram's sender, against
//! XChaCha20-Poly1305 (RustCrypto, software), which sealed channels until December 2026, and
//! ring's ChaCha20-Poly1305 and AES-256-GCM with a fixed key, sealing and opening whole datagrams
//! of the sizes sixcast sends (1232 bytes at MTU 1500, 8952 at MTU 9000). Pure CPU, one core,
//! measured in the same run; the ratios are against XChaCha20-Poly1305. docs/security.md says
//! why the choice fell on AES-256-GCM.
//!
//! ```sh
//! cargo bench -p sixcast --bench aead
//! SIXCAST_BENCH_SECONDS=3 cargo bench -p sixcast --bench aead
//! ```

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305, XNonce, aead::Tag};
use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

/// The clear prefix sixcast authenticates as associated data: header, key id, group.
const AAD_LEN: usize = 24 + 8 + 16;

/// One AEAD, sealing and opening in place with a detached tag.
trait Cipher {
    fn name(&self) -> &'static str;
    fn seal(&self, counter: u64, aad: &[u8], body: &mut [u8]) -> [u8; 16];
    fn open(&self, counter: u64, aad: &[u8], body: &mut [u8], tag: &[u8; 16]) -> bool;
}

struct XChaCha(XChaCha20Poly1305);

impl Cipher for XChaCha {
    fn name(&self) -> &'static str {
        "XChaCha20-Poly1305 (RustCrypto, until 2026-12)"
    }

    fn seal(&self, counter: u64, aad: &[u8], body: &mut [u8]) -> [u8; 16] {
        let tag = self
            .0
            .encrypt_inout_detached(&xnonce(counter), aad, body.into())
            .expect("sealing");
        tag.into()
    }

    fn open(&self, counter: u64, aad: &[u8], body: &mut [u8], tag: &[u8; 16]) -> bool {
        let tag = Tag::<XChaCha20Poly1305>::from(*tag);
        self.0
            .decrypt_inout_detached(&xnonce(counter), aad, body.into(), &tag)
            .is_ok()
    }
}

fn xnonce(counter: u64) -> XNonce {
    let mut nonce = [0; 24];
    nonce[8..16].copy_from_slice(&counter.to_be_bytes());
    XNonce::from(nonce)
}

struct Ring(LessSafeKey, &'static str);

/// AES-256-GCM with a key derived for each datagram's sender from the channel key (BLAKE3, then
/// ring's key schedule), as sixcast seals and opens.
struct RingPerSender([u8; 32]);

impl RingPerSender {
    fn key(&self, counter: u64) -> LessSafeKey {
        // The sender changes with every datagram here: the worst case.
        let sender = blake3::keyed_hash(&self.0, &counter.to_be_bytes());
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, sender.as_bytes()).expect("a 32-byte key"))
    }
}

impl Cipher for RingPerSender {
    fn name(&self) -> &'static str {
        "AES-256-GCM, key derived per datagram (sixcast)"
    }

    fn seal(&self, counter: u64, aad: &[u8], body: &mut [u8]) -> [u8; 16] {
        Ring(self.key(counter), "").seal(counter, aad, body)
    }

    fn open(&self, counter: u64, aad: &[u8], body: &mut [u8], tag: &[u8; 16]) -> bool {
        Ring(self.key(counter), "").open(counter, aad, body, tag)
    }
}

impl Cipher for Ring {
    fn name(&self) -> &'static str {
        self.1
    }

    fn seal(&self, counter: u64, aad: &[u8], body: &mut [u8]) -> [u8; 16] {
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce(counter), Aad::from(aad), body)
            .expect("sealing");
        let mut out = [0; 16];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn open(&self, counter: u64, aad: &[u8], body: &mut [u8], tag: &[u8; 16]) -> bool {
        // ring opens a body with its tag appended; the copy is a fraction of a microsecond.
        let mut sealed = Vec::with_capacity(body.len() + 16);
        sealed.extend_from_slice(body);
        sealed.extend_from_slice(tag);
        self.0
            .open_in_place(nonce(counter), Aad::from(aad), &mut sealed)
            .is_ok()
    }
}

fn nonce(counter: u64) -> Nonce {
    let mut nonce = [0; 12];
    nonce[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(nonce)
}

/// Datagrams a second that `work` handles for `duration`, and what one costs.
fn rate(duration: Duration, mut work: impl FnMut(u64)) -> f64 {
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < duration {
        for _ in 0..64 {
            work(count);
            count += 1;
        }
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let seconds = std::env::var("SIXCAST_BENCH_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1.0);
    let duration = Duration::from_secs_f64(seconds);
    let key = [7u8; 32];
    let ring_key = |algorithm, name| {
        Ring(
            LessSafeKey::new(UnboundKey::new(algorithm, &key).expect("a 32-byte key")),
            name,
        )
    };
    let ciphers: [Box<dyn Cipher>; 4] = [
        Box::new(XChaCha(XChaCha20Poly1305::new(&key.into()))),
        Box::new(ring_key(&AES_256_GCM, "AES-256-GCM (ring, hardware)")),
        Box::new(RingPerSender(key)),
        Box::new(ring_key(&CHACHA20_POLY1305, "ChaCha20-Poly1305 (ring)")),
    ];
    let aad = [5u8; AAD_LEN];
    println!(
        "one core, {seconds} s per figure; datagrams a second, and the ratio to XChaCha20-Poly1305\n"
    );
    println!(
        "{:>9} {:<50} | {:>12} {:>7} {:>6} | {:>12} {:>7} {:>6}",
        "datagram", "cipher", "seal dgram/s", "GB/s", "ratio", "open dgram/s", "GB/s", "ratio"
    );
    for size in [1232usize, 8952] {
        let body_len = size - AAD_LEN - 16;
        let mut baseline = None;
        for cipher in &ciphers {
            let mut body = vec![0x5cu8; body_len];
            let sealed = rate(duration, |counter| {
                black_box(cipher.seal(counter, &aad, black_box(&mut body)));
            });
            // Opening needs genuine tags: one sealed body, opened again and again.
            let mut original = vec![0x5cu8; body_len];
            let tag = cipher.seal(1, &aad, &mut original);
            let mut scratch = original.clone();
            let opened = rate(duration, |_| {
                scratch.copy_from_slice(&original);
                assert!(cipher.open(1, &aad, black_box(&mut scratch), &tag));
            });
            let (seal_base, open_base) = *baseline.get_or_insert((sealed, opened));
            let gigabytes = |per_second: f64| per_second * size as f64 / 1e9;
            println!(
                "{size:>9} {:<50} | {sealed:>12.0} {:>7.2} {:>5.2}x | {opened:>12.0} {:>7.2} {:>5.2}x",
                cipher.name(),
                gigabytes(sealed),
                sealed / seal_base,
                gigabytes(opened),
                opened / open_base,
            );
        }
    }
}
