//! Reed-Solomon parity over a block of packets, which differ in length.
//!
//! Each packet becomes a *source symbol*: its length (u16, big-endian), its bytes, and zeros up
//! to the block's symbol length, which is the longest packet's plus 2, rounded up to even (the
//! code works on 16-bit words). A block of `k` packets has [`parity_count`]`(k)` parity symbols
//! of that length; any `k` of the `k + parity` symbols give back every packet.

use reed_solomon_simd::ReedSolomonEncoder;
use reed_solomon_simd::engine::{
    DefaultEngine, Engine, GF_MODULUS, GF_ORDER, GfElement, ShardsRefMut, tables,
};
use reed_solomon_simd::rate::{DefaultRateDecoder, RateDecoder};

use crate::wire::repair::parity_count;

/// The symbol length of a block whose longest packet is `longest` bytes.
pub(super) fn symbol_len(longest: usize) -> usize {
    (longest + 2).next_multiple_of(2)
}

/// Frames `packet` as a source symbol of `symbol_len` bytes.
fn frame(packet: &[u8], symbol_len: usize) -> Vec<u8> {
    let mut symbol = Vec::with_capacity(symbol_len);
    // Packets are datagrams, at most 65,507 bytes: the length always fits.
    symbol.extend_from_slice(
        &u16::try_from(packet.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    symbol.extend_from_slice(packet);
    symbol.resize(symbol_len, 0);
    symbol
}

/// The packet inside a source symbol, or `None` when its length does not fit: only forged or
/// mismatched parity decodes to that.
fn unframe(symbol: &[u8]) -> Option<Vec<u8>> {
    let (len, rest) = symbol.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    (len > 0 && len <= rest.len()).then(|| rest[..len].to_vec())
}

/// Every parity symbol of a block, in index order; `None` if the block is empty or too long.
pub(super) fn encode(packets: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    let block_len = u16::try_from(packets.len()).ok().filter(|&len| len > 0)?;
    let symbol_len = symbol_len(packets.iter().map(Vec::len).max()?);
    let mut encoder = ReedSolomonEncoder::new(
        packets.len(),
        usize::from(parity_count(block_len)),
        symbol_len,
    )
    .ok()?;
    for packet in packets {
        encoder.add_original_shard(frame(packet, symbol_len)).ok()?;
    }
    let result = encoder.encode().ok()?;
    Some(result.recovery_iter().map(<[u8]>::to_vec).collect())
}

/// The missing packets of a block of `block_len`, from the packets at hand (by index in the
/// block) and parity symbols (by parity index), all of one symbol length. `None` when they are
/// too few, or inconsistent (a packet longer than the symbols allow, a garbled symbol).
pub(super) fn recover<'a>(
    block_len: u16,
    present: impl Iterator<Item = (usize, &'a [u8])>,
    parity: impl Iterator<Item = (usize, &'a [u8])>,
    symbol_len: usize,
) -> Option<Vec<(usize, Vec<u8>)>> {
    let mut decoder = DefaultRateDecoder::new(
        usize::from(block_len),
        usize::from(parity_count(block_len)),
        symbol_len,
        FewErasures::default(),
        None,
    )
    .ok()?;
    for (index, packet) in present {
        if packet.len() + 2 > symbol_len {
            return None;
        }
        decoder
            .add_original_shard(index, frame(packet, symbol_len))
            .ok()?;
    }
    for (index, symbol) in parity {
        decoder.add_recovery_shard(index, symbol).ok()?;
    }
    let result = decoder.decode().ok()?;
    result
        .restored_original_iter()
        .map(|(index, symbol)| Some((index, unframe(symbol)?)))
        .collect()
}

/// The crate's engine, but for the decoder's error locator, which it evaluates with two
/// Walsh-Hadamard transforms over the whole field (2^16 points) whatever the block: about 200 us
/// a block, most of a receiver's CPU at a few percent loss. A block of `k` packets and `k` parity
/// needs the locator at only `2k` points, and each is a sum of logarithms over the erased points,
/// so the sums themselves cost a few microseconds. The result is the same, hence so is the code.
#[derive(Default)]
struct FewErasures(DefaultEngine);

/// Above this many table additions the transforms are the cheaper way (measured: at 256 packets
/// and 256 parity, about 2^17 additions, the sums still took 460 us against 600).
const MAX_LOCATOR_SUMS: usize = 1 << 18;

impl Engine for FewErasures {
    fn fft(
        &self,
        data: &mut ShardsRefMut,
        pos: usize,
        size: usize,
        truncated_size: usize,
        skew_delta: usize,
    ) {
        self.0.fft(data, pos, size, truncated_size, skew_delta);
    }

    fn ifft(
        &self,
        data: &mut ShardsRefMut,
        pos: usize,
        size: usize,
        truncated_size: usize,
        skew_delta: usize,
    ) {
        self.0.ifft(data, pos, size, truncated_size, skew_delta);
    }

    fn mul(&self, x: &mut [[u8; 64]], log_m: GfElement) {
        self.0.mul(x, log_m);
    }

    /// On entry `erasures` marks erased points with 1, all of them below `truncated_size`; on
    /// return, point `i` holds `sum of log(i xor j)` over the erased `j` (with `log(0)` taken as
    /// 0), mod 2^16 - 1: the dyadic convolution the two transforms compute. Only points below
    /// `truncated_size` are filled: the high-rate decoder, the one that passes a truncated size,
    /// reads no others. The low-rate decoder passes the whole field and keeps the transforms.
    fn eval_poly(erasures: &mut [GfElement; GF_ORDER], truncated_size: usize) {
        if truncated_size >= GF_ORDER {
            return DefaultEngine::eval_poly(erasures, truncated_size);
        }
        let erased: Vec<usize> = (0..truncated_size)
            .filter(|&point| erasures[point] != 0)
            .collect();
        let sparse = erased.len() * truncated_size <= MAX_LOCATOR_SUMS
            && erased.iter().all(|&point| erasures[point] == 1);
        if !sparse {
            return DefaultEngine::eval_poly(erasures, truncated_size);
        }
        let log = &tables::get_exp_log().log;
        for (point, value) in erasures[..truncated_size].iter_mut().enumerate() {
            let sum: u32 = erased
                .iter()
                .filter(|&&other| other != point)
                .map(|&other| u32::from(log[point ^ other]))
                .sum();
            // Fewer than 2^16 terms of under 2^16 each: the sum fits in a u32.
            *value = GfElement::try_from(sum % u32::from(GF_MODULUS)).unwrap_or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets() -> Vec<Vec<u8>> {
        (0..8u8).map(|n| vec![n; 10 + usize::from(n) * 7]).collect()
    }

    #[test]
    fn any_k_symbols_give_back_the_block() {
        let packets = packets();
        let parity = encode(&packets).unwrap();
        assert_eq!(parity.len(), 16);
        let symbol_len = parity[0].len();
        assert_eq!(symbol_len, symbol_len_of(&packets));
        // Packets 1, 4 and 6 lost; parity 3, 9 and 15 stand in.
        let lost = [1, 4, 6];
        let present = packets
            .iter()
            .enumerate()
            .filter(|(index, _)| !lost.contains(index))
            .map(|(index, packet)| (index, packet.as_slice()));
        let chosen = [3, 9, 15].map(|index| (index, parity[index].as_slice()));
        let mut restored = recover(8, present, chosen.into_iter(), symbol_len).unwrap();
        restored.sort();
        assert_eq!(
            restored,
            lost.map(|index| (index, packets[index].clone())).to_vec()
        );
    }

    fn symbol_len_of(packets: &[Vec<u8>]) -> usize {
        symbol_len(packets.iter().map(Vec::len).max().unwrap())
    }

    #[test]
    fn too_few_symbols_or_a_mismatch_recover_nothing() {
        let packets = packets();
        let parity = encode(&packets).unwrap();
        let symbol_len = parity[0].len();
        let present = packets[..6]
            .iter()
            .enumerate()
            .map(|(index, packet)| (index, packet.as_slice()));
        // Two lost, one parity symbol.
        assert!(
            recover(
                8,
                present.clone(),
                [(0, parity[0].as_slice())].into_iter(),
                symbol_len
            )
            .is_none()
        );
        // A packet longer than the symbols: not this block's parity.
        let long = vec![0; symbol_len];
        let with_long = present.clone().chain([(6, long.as_slice())]);
        assert!(
            recover(
                8,
                with_long,
                [(0, parity[0].as_slice())].into_iter(),
                symbol_len
            )
            .is_none()
        );
        // A garbled symbol decodes to a length that does not fit, or to other bytes.
        let garbled = vec![0xff; symbol_len];
        let restored = recover(
            8,
            present,
            [(0, garbled.as_slice()), (1, parity[1].as_slice())].into_iter(),
            symbol_len,
        );
        assert_ne!(
            restored.map(|mut restored| {
                restored.sort();
                restored
            }),
            Some(vec![(6, packets[6].clone()), (7, packets[7].clone())])
        );
    }

    #[test]
    fn a_block_of_one_has_two_parity_copies() {
        let packets = vec![b"alone".to_vec()];
        let parity = encode(&packets).unwrap();
        assert_eq!(parity.len(), 2);
        let restored = recover(
            1,
            std::iter::empty(),
            [(1, parity[1].as_slice())].into_iter(),
            parity[1].len(),
        );
        assert_eq!(restored, Some(vec![(0, b"alone".to_vec())]));
        assert!(encode(&[]).is_none());
    }

    proptest::proptest! {
        #[test]
        fn the_locator_sums_equal_the_transforms(
            erased in proptest::collection::vec(proptest::bool::weighted(0.4), 1..600),
        ) {
            let truncated_size = erased.len();
            let mut sums = [0; GF_ORDER];
            for (point, &is_erased) in erased.iter().enumerate() {
                sums[point] = GfElement::from(is_erased);
            }
            let mut transforms = sums;
            FewErasures::eval_poly(&mut sums, truncated_size);
            DefaultEngine::eval_poly(&mut transforms, truncated_size);
            for point in 0..truncated_size {
                // The transforms may leave 2^16 - 1 where the sums give its equal, 0.
                proptest::prop_assert_eq!(
                    sums[point] % GF_MODULUS,
                    transforms[point] % GF_MODULUS,
                    "point {}",
                    point
                );
            }
        }
    }

    #[test]
    fn full_blocks_come_back_from_any_parity_at_any_loss() {
        // Blocks of 64 and 200 take the high-rate decoder, the one that sums the locator.
        for block_len in [64u16, 200] {
            let packets: Vec<Vec<u8>> = (0..block_len)
                .map(|n| {
                    (0..1000 + usize::from(n))
                        .map(|i| (i * 7 + usize::from(n)) as u8)
                        .collect()
                })
                .collect();
            let parity = encode(&packets).unwrap();
            let symbol_len = parity[0].len();
            let mut state = 0x9e37_79b9_u32;
            let mut next = move |bound: usize| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as usize % bound
            };
            for lost_count in [1, 3, 10, usize::from(block_len) / 2] {
                let mut lost: Vec<usize> = (0..lost_count).map(|_| next(packets.len())).collect();
                lost.sort_unstable();
                lost.dedup();
                let present = packets
                    .iter()
                    .enumerate()
                    .filter(|(index, _)| !lost.contains(index))
                    .map(|(index, packet)| (index, packet.as_slice()));
                let mut chosen: Vec<usize> = Vec::new();
                while chosen.len() < lost.len() {
                    let index = next(parity.len());
                    if !chosen.contains(&index) {
                        chosen.push(index);
                    }
                }
                let chosen = chosen
                    .iter()
                    .map(|&index| (index, parity[index].as_slice()));
                let mut restored = recover(block_len, present, chosen, symbol_len).unwrap();
                restored.sort();
                let expected: Vec<_> = lost
                    .iter()
                    .map(|&index| (index, packets[index].clone()))
                    .collect();
                assert_eq!(
                    restored, expected,
                    "block of {block_len}, {lost_count} lost"
                );
            }
        }
    }
}
